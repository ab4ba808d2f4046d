package route

import (
	"net/netip"
	"testing"
)

// The bound on load: a new client whose first choice holds 1.25 × the mean
// of the clients goes to its next choice, and comes back once that one is
// below it; a client with a connection open stays where it is.
func TestIPHashBound(t *testing.T) {
	s := &Snapshot{}
	for i := range 4 {
		s.list = append(s.list, &Target{Backend: Backend{ID: uint64(i)}, hash: hashBytes([]byte{byte(i)})})
	}
	key := hashBytes([]byte("client"))
	first := s.pick(IPHash, 0, key, nil)
	if first == nil {
		t.Fatal("no pick among 4 idle backends")
	}
	// Below the floor, nothing moves a client: 7 on its first choice and
	// none elsewhere.
	first.nclients.Store(ipHashFloor - 1)
	if got := s.pick(IPHash, 0, key, nil); got != first {
		t.Fatalf("first choice with %d clients, under the floor, was passed over", ipHashFloor-1)
	}
	// 3 × 10 clients elsewhere, 12 on the first choice: the new one makes
	// 43, whose mean is 10.75, so the bound is ceil(13.4375) = 14: room.
	for _, b := range s.list {
		b.nclients.Store(10)
	}
	first.nclients.Store(12)
	if got := s.pick(IPHash, 0, key, nil); got != first {
		t.Fatalf("first choice at 5 under a bound of 6 was passed over for %d", got.ID)
	}
	first.nclients.Store(14) // 30 + 14 + 1 = 45: bound ceil(14.0625) = 15, and 14 is under it
	if got := s.pick(IPHash, 0, key, nil); got != first {
		t.Fatal("first choice at 14 under a bound of 15 was passed over")
	}
	first.nclients.Store(16) // 30 + 16 + 1 = 47: bound ceil(14.6875) = 15, and 16 is not under it
	second := s.pick(IPHash, 0, key, nil)
	if second == first || second == nil {
		t.Fatalf("first choice at the bound was picked anyway")
	}
	if got := s.pick(IPHash, 0, key, []*Target{second}); got == first || got == second || got == nil {
		t.Fatalf("with the second choice tried, got %v", got)
	}
	first.nclients.Store(10)
	if got := s.pick(IPHash, 0, key, nil); got != first {
		t.Fatal("the client did not come back to its first choice below the bound")
	}
	// A client that holds a connection on the second choice goes there,
	// bound or no bound.
	second.acquire(&Lease{}, 0, key, true)
	if got := s.pick(IPHash, 0, key, nil); got != second {
		t.Fatal("a client with a connection open on a backend was sent elsewhere")
	}
	second.leases.end()
	// Every one at the bound (the loads moved while it looked): the first
	// choice still wins, so the choice stays stable.
	for _, b := range s.list {
		b.nclients.Store(100)
	}
	if got := s.pick(IPHash, 0, key, nil); got != first {
		t.Fatal("with every backend at the bound, the first choice lost")
	}
}

// Rendezvous weights depend only on the client and the backend's address:
// removing one backend changes no other client's first choice.
func TestIPHashKeyIsAddressOnly(t *testing.T) {
	if AddrKey(netip.MustParseAddr("10.1.2.3")) != AddrKey(netip.MustParseAddr("::ffff:10.1.2.3")) {
		t.Fatal("an IPv4-mapped IPv6 address hashes apart from its IPv4 address")
	}
	if AddrKey(netip.MustParseAddr("10.1.2.3")) == AddrKey(netip.MustParseAddr("10.1.2.4")) {
		t.Fatal("two addresses hash alike")
	}
}
