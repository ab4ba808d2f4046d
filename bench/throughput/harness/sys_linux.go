package harness

import "syscall"

// sysProcAttr puts a child in its own process group and kills it when the
// benchmark dies, even by SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// loopbackSocket returns a new close-on-exec TCP/IPv4 socket.
func loopbackSocket() (int, error) {
	return syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}
