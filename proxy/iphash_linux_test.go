package proxy

import (
	"fmt"
	"net"
	"testing"
)

// clientAddr is the i-th client address for the ip-hash tests: all of
// 127.0.0.0/8 is loopback on Linux, so a test can be a thousand clients.
func clientAddr(i int) string { return fmt.Sprintf("127.%d.%d.%d", 10+i/62500, i/250%250, 1+i%250) }

// dialFrom connects to addr from source address src.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitLimit}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("cannot dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func fourBackends(t *testing.T) ([]*server, []Backend) {
	var ss []*server
	var bs []Backend
	for i, name := range []string{"a", "b", "c", "d"} {
		s := startServer(t, name, greetEcho)
		ss = append(ss, s)
		bs = append(bs, s.backend(uint64(i+1)))
	}
	return ss, bs
}

// 1,000 client addresses, each holding a connection open: no backend holds
// more than 1.25 × the mean, and a second connection from a client goes
// where its first went.
func TestIPHashSpreadsWithinTheBound(t *testing.T) {
	_, bs := fourBackends(t)
	p := startProxy(t, Options{Balance: IPHash})
	p.SetBackends(bs)
	const clients = 1000
	first := make([]string, clients)
	per := map[string]int{}
	for i := range clients {
		first[i] = greeting(t, dialFrom(t, clientAddr(i), p.addr))
		per[first[i]]++
	}
	mean := float64(clients) / float64(len(bs))
	lo, hi := clients, 0
	for _, n := range per {
		lo, hi = min(lo, n), max(hi, n)
	}
	t.Logf("%d clients over 4 backends: %v (mean %.0f, busiest %.3f × the mean, least %.3f ×)", clients, per, mean, float64(hi)/mean, float64(lo)/mean)
	if float64(hi) > 1.25*mean { // route.ipHashBound
		t.Fatalf("busiest backend holds %d connections, above 1.25 × the mean of %.0f", hi, mean)
	}
	for i := 0; i < clients; i += 10 {
		if got := greeting(t, dialFrom(t, clientAddr(i), p.addr)); got != first[i] {
			t.Fatalf("client %s: first connection went to %s, the second to %s", clientAddr(i), first[i], got)
		}
	}
}

// Connection after connection, a client stays on its backend; when a
// backend leaves, only its clients move. (The clients come one at a time,
// so the bound on load, which counts the clients connected, never moves
// one.)
func TestIPHashMovesOnlyTheRemovedBackendsClients(t *testing.T) {
	_, bs := fourBackends(t)
	p := startProxy(t, Options{Balance: IPHash})
	p.SetBackends(bs)
	const clients = 200
	where := func(i int) string {
		c := dialFrom(t, clientAddr(i), p.addr)
		got := greeting(t, c)
		c.Close()
		// The bound counts the clients with a connection open: with a
		// handful of them, a connection the proxy has not yet seen end
		// would count against the next client's first choice.
		waitFor(t, func() bool { return p.registered() == 0 }, "the proxy to see the connection end")
		return got
	}
	before := make([]string, clients)
	for i := range clients {
		before[i] = where(i)
		for range 2 {
			if got := where(i); got != before[i] {
				t.Fatalf("client %s went to %s, then to %s", clientAddr(i), before[i], got)
			}
		}
	}
	p.SetBackends([]Backend{bs[0], bs[1], bs[3]}) // c leaves
	moved := map[string]int{}
	for i := range clients {
		got := where(i)
		switch {
		case before[i] == "c" && got == "c":
			t.Fatalf("client %s still reached removed backend c", clientAddr(i))
		case before[i] == "c":
			moved[got]++
		case got != before[i]:
			t.Fatalf("client %s moved from %s to %s though %s is still routable", clientAddr(i), before[i], got, before[i])
		}
	}
	t.Logf("c's clients went to %v", moved)
	if len(moved) < 2 {
		t.Fatalf("every client of the removed backend went to one backend: %v", moved)
	}
}
