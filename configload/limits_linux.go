package configload

import (
	"bytes"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeInherited closes every descriptor above stderr that came through
// the exec: those are the ones without close-on-exec. The Go runtime's own
// (its poller) and everything os opens have the flag, and stay.
func closeInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			syscall.Close(fd)
		}
	}
}

// limitSelf lowers the child's own limits (lowering needs no privilege):
// its address space to what it has now plus memory bytes, its CPU time to
// cpu seconds, and no core dump of a crash.
func limitSelf(memory, cpu uint64) error {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return err
	}
	pages, err := strconv.ParseUint(string(bytes.Fields(b)[0]), 10, 64)
	if err != nil {
		return err
	}
	as := pages*uint64(os.Getpagesize()) + memory
	for _, l := range []struct {
		res int
		cur uint64
		max uint64
	}{
		{unix.RLIMIT_AS, as, as},
		{unix.RLIMIT_CPU, cpu, cpu + 1},
		{unix.RLIMIT_CORE, 0, 0},
	} {
		var old unix.Rlimit
		if err := unix.Getrlimit(l.res, &old); err != nil {
			return err
		}
		// Never raise: a limit already lower stays.
		if old.Max != unix.RLIM_INFINITY && old.Max < l.max {
			l.max = old.Max
		}
		if old.Cur != unix.RLIM_INFINITY && old.Cur < l.cur {
			l.cur = old.Cur
		}
		if err := unix.Setrlimit(l.res, &unix.Rlimit{Cur: min(l.cur, l.max), Max: l.max}); err != nil {
			return err
		}
	}
	return nil
}
