package runners

import "syscall"

// runnerAttr makes a clusterrun under test drain (SIGTERM) when the
// benchmark dies, even by SIGKILL, so that an interrupted run leaves no
// runner and no instances behind.
func runnerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
