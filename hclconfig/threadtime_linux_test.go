package hclconfig

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadTime is the CPU time, user and system, of the calling thread (the
// caller keeps its goroutine on it with runtime.LockOSThread).
func threadTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
