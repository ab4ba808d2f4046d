package listeners

import "syscall"

// loopbackSocket returns a new close-on-exec TCP/IPv4 socket.
func loopbackSocket() (int, error) {
	return syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}
