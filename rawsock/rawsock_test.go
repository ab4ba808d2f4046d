//go:build linux || darwin || freebsd

package rawsock

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// Accept gives the client's address, IPv4 and IPv6, on a descriptor that
// Read and Write serve without waiting; a send to a client that reset is
// an error, not a signal.
func TestAcceptReadWrite(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", addr, err)
			continue
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := ln.(*net.TCPListener).SyscallConn()
		var (
			fd   int
			e    syscall.Errno
			peer = c.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
		)
		// The connection is queued once Dial returns; EAGAIN would mean
		// Accept lost it.
		var got netip.Addr
		rc.Control(func(lfd uintptr) { fd, got, e = Accept(int(lfd)) })
		if e != 0 {
			t.Fatalf("%s: accept: %v", addr, e)
		}
		if got != peer {
			t.Errorf("%s: peer %v, want %v", addr, got, peer)
		}
		if _, e := Read(fd, make([]byte, 8)); e != syscall.EAGAIN {
			t.Errorf("%s: read with nothing sent: %v, want EAGAIN", addr, e)
		}
		c.Write([]byte("ping"))
		buf := make([]byte, 8)
		deadline := time.Now().Add(20 * time.Second)
		n := 0
		for n == 0 && time.Now().Before(deadline) {
			var e syscall.Errno
			if n, e = Read(fd, buf); e != 0 && e != syscall.EAGAIN {
				t.Fatalf("%s: read: %v", addr, e)
			}
		}
		if string(buf[:n]) != "ping" {
			t.Fatalf("%s: read %q, want ping (waited up to 20s)", addr, buf[:n])
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // a reset
		var we syscall.Errno
		for we == 0 && time.Now().Before(deadline) {
			_, we = Write(fd, []byte("pong"))
		}
		if we != syscall.EPIPE && we != syscall.ECONNRESET {
			t.Errorf("%s: send to a reset client: %v, want EPIPE or ECONNRESET (waited up to 20s)", addr, we)
		}
		syscall.Close(fd)
		ln.Close()
	}
}
