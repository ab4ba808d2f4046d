//go:build !linux

package proc

import "syscall"

// Without Pdeathsig, instances outlive a runner killed with SIGKILL; a
// graceful stop still ends every process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// Child subreapers are a Linux feature; elsewhere orphans go to init.
func becomeSubreaper() error { return nil }

func noDeathSignal(*syscall.SysProcAttr) {}

// running: without /proc, a process that exited but is not reaped yet
// still counts as running.
func running(pid int) bool { return syscall.Kill(pid, 0) == nil }
