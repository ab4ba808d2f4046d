//go:build !linux

package configload

import (
	"syscall"
)

// closeInherited relies on close-on-exec outside Linux, where there is
// no /proc/self/fd to find the rest.
func closeInherited() {}

// limitSelf limits the CPU time and core dumps; the address space limit
// of Linux is not one macOS enforces, so the parent's wall-clock limit
// is the only bound on a child that grows.
func limitSelf(memory, cpu uint64) error {
	if err := syscall.Setrlimit(syscall.RLIMIT_CPU, cpuRlimit(cpu)); err != nil {
		return err
	}
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
}
