package proc

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTicks = 100

func groupUsage(pgids []int) (map[int]Usage, error) {
	want := make(map[int]bool, len(pgids))
	for _, g := range pgids {
		want[g] = true
	}
	out := make(map[int]Usage, len(pgids))
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	page := int64(os.Getpagesize())
	buf := make([]byte, 1024)
	path := make([]byte, 0, 32)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		// Raw open and read into one buffer: this walks every process on
		// the machine, and an os.File per process is garbage per process.
		path = append(append(append(path[:0], "/proc/"...), n...), "/stat"...)
		b, ok := readRaw(path, buf)
		if !ok {
			continue // the process ended while we looked
		}
		pgrp, cpu, rss, ok := parseStat(b)
		if !ok || !want[pgrp] {
			continue
		}
		u := out[pgrp]
		u.CPU += cpu
		u.RSS += rss * page
		u.Procs++
		out[pgrp] = u
	}
	return out, nil
}

// readRaw reads the start of a small file (path without a NUL) into buf.
func readRaw(path, buf []byte) ([]byte, bool) {
	fd, err := syscall.Open(string(path), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	n, err := syscall.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil, false
	}
	return buf[:n], true
}

// parseStat reads pgrp (field 5), utime+stime (14, 15) and rss in pages
// (24) from /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (pgrp int, cpu time.Duration, rssPages int64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 22 {
		return 0, 0, 0, false
	}
	pg, err1 := strconv.Atoi(string(f[2]))
	ut, err2 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err3 := strconv.ParseInt(string(f[12]), 10, 64)
	rss, err4 := strconv.ParseInt(string(f[21]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return 0, 0, 0, false
	}
	return pg, time.Duration(ut+st) * time.Second / clockTicks, rss, true
}

func self() (int64, int) {
	rss, fds := int64(-1), -1
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := bytes.Fields(b); len(f) > 1 {
			if pages, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
				rss = pages * int64(os.Getpagesize())
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(ents) - 1 // the directory itself was open while it was read
	}
	return rss, fds
}
