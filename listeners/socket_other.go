//go:build !linux

package listeners

import "syscall"

// loopbackSocket returns a new close-on-exec TCP/IPv4 socket. Without
// SOCK_CLOEXEC the flag is set after creation, under ForkLock so that no
// fork sees the descriptor in between.
func loopbackSocket() (int, error) { return wildcardSocket(syscall.AF_INET) }

// wildcardSocket returns a new close-on-exec TCP socket of family.
func wildcardSocket(family int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	return fd, err
}

// deferAccept is Linux's TCP_DEFER_ACCEPT; elsewhere connections are handed
// over at once.
func deferAccept(uintptr, int) error { return nil }
