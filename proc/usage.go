package proc

import (
	"errors"
	"time"
)

// Memory is what processes cost in memory, from /proc/PID/smaps_rollup.
// Resident set sizes are not used: summed over processes that share pages
// (a binary's code, a forked parent's heap) they count a page once per
// process, so a group of eight Node workers would seem eight times its
// code.
type Memory struct {
	// PSS, the proportional set size, counts each resident page divided
	// by the number of processes that map it: summed over all processes,
	// every page counts once.
	PSS int64
	// USS, the unique set size, counts the pages that only one process
	// maps: what stopping the processes would free.
	USS int64
}

// Add returns the sum of m and o.
func (m Memory) Add(o Memory) Memory { return Memory{PSS: m.PSS + o.PSS, USS: m.USS + o.USS} }

// Usage is the resource use of a process group.
type Usage struct {
	// CPU is the user+system time consumed so far by the group's live
	// members.
	CPU time.Duration
	// Memory sums every live member's PSS and USS; zero when it was not
	// asked for.
	Memory Memory
	// Procs is how many live processes the group has.
	Procs int
}

// ErrUnsupported is returned where the kernel offers no cheap way to read
// another process's usage.
var ErrUnsupported = errors.New("process usage is only available on Linux")

// GroupUsage returns the summed usage of every live process in each of the
// given process groups, keyed by group id; memory says whether to read the
// members' memory too (a read of each one's smaps_rollup), or only their
// CPU time.
func GroupUsage(pgids []int, memory bool) (map[int]Usage, error) {
	return groupUsage(pgids, memory)
}

// ProcessMemory returns the summed PSS and USS of the processes pids (one
// that is gone counts nothing): the runner and its guard, for the
// runner's own figure.
func ProcessMemory(pids ...int) (Memory, error) { return processMemory(pids) }

// OpenFDs returns how many descriptors this process has open, or -1 where
// that cannot be read.
func OpenFDs() int { return openFDs() }
