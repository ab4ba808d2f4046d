//go:build !linux

package harness

import "syscall"

// sysProcAttr puts a child in its own process group. Only Linux has a
// parent-death signal; the benchmarks read /proc and run on Linux only, and
// this file just keeps the repository building elsewhere.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// loopbackSocket returns a new close-on-exec TCP/IPv4 socket.
func loopbackSocket() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	return fd, err
}
