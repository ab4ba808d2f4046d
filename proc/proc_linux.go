package proc

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig is a backstop for a runner killed with SIGKILL: it reaches
	// the instance's main process only (not its group), and fires when the
	// forking OS thread ends, which in Go happens only with the process.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

func noDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = 0 }
