package route

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// The kernel says how many connections a listener's accept queue holds.
func TestAcceptQueueCap(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 5); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*syscall.SockaddrInet4).Port))
	if got := acceptQueueCap(ap); got != 6 {
		t.Fatalf("acceptQueueCap(%s) with backlog 5 = %d, want 6", ap, got)
	}
	// A port nobody listens on: one that was just let go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	if got := acceptQueueCap(closed); got != 0 {
		t.Fatalf("acceptQueueCap of a port nobody listens on = %d, want 0", got)
	}
}
