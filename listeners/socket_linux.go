package listeners

import "syscall"

// loopbackSocket returns a new close-on-exec TCP/IPv4 socket.
func loopbackSocket() (int, error) { return wildcardSocket(syscall.AF_INET) }

// wildcardSocket returns a new close-on-exec TCP socket of family.
func wildcardSocket(family int) (int, error) {
	return syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}

// deferAccept makes the kernel hand an accepted connection over only once
// its first bytes have come (TCP_DEFER_ACCEPT, nginx's "deferred"): an
// HTTP client speaks first, so the runner's first read of a new
// connection finds its request instead of waiting for it, and a client
// that connects and says nothing costs the runner nothing for secs.
func deferAccept(fd uintptr, secs int) error {
	return syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs)
}
