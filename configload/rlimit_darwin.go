package configload

import "syscall"

// cpuRlimit: a soft limit of cpu seconds, the hard one a second later, so
// SIGXCPU comes before SIGKILL.
func cpuRlimit(cpu uint64) *syscall.Rlimit {
	return &syscall.Rlimit{Cur: cpu, Max: cpu + 1}
}
