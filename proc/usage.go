package proc

import (
	"errors"
	"time"
)

// Usage is the resource use of a process group.
type Usage struct {
	// CPU is the user+system time consumed so far by the group's live
	// members.
	CPU time.Duration
	// RSS is the summed resident set size in bytes.
	RSS int64
	// Procs is how many live processes the group has.
	Procs int
}

// ErrUnsupported is returned where the kernel offers no cheap way to read
// another process's usage.
var ErrUnsupported = errors.New("process usage is only available on Linux")

// GroupUsage returns the summed usage of every live process in each of the
// given process groups, keyed by group id.
func GroupUsage(pgids []int) (map[int]Usage, error) {
	return groupUsage(pgids)
}

// Self returns this process's resident memory in bytes and its number of
// open descriptors, or -1 for what cannot be read here.
func Self() (rss int64, fds int) { return self() }
