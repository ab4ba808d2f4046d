package configload

import "syscall"

// cpuRlimit: FreeBSD's Rlimit has signed fields.
func cpuRlimit(cpu uint64) *syscall.Rlimit {
	return &syscall.Rlimit{Cur: int64(cpu), Max: int64(cpu + 1)}
}
