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

func groupUsage(pgids []int, memory bool) (map[int]Usage, error) {
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
	buf := make([]byte, 4096)
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
		pgrp, cpu, ok := parseStat(b)
		if !ok || !want[pgrp] {
			continue
		}
		u := out[pgrp]
		u.CPU += cpu
		u.Procs++
		if memory {
			path = append(append(append(path[:0], "/proc/"...), n...), "/smaps_rollup"...)
			if b, ok := readRaw(path, buf); ok {
				u.Memory = u.Memory.Add(parseRollup(b))
			}
		}
		out[pgrp] = u
	}
	return out, nil
}

func processMemory(pids []int) (Memory, error) {
	var m Memory
	buf := make([]byte, 4096)
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		b, ok := readRaw([]byte("/proc/"+strconv.Itoa(pid)+"/smaps_rollup"), buf)
		if !ok {
			if pid == os.Getpid() {
				// Not even our own: the kernel has no smaps_rollup
				// (before 4.14), or /proc is not mounted.
				return Memory{}, ErrUnsupported
			}
			continue
		}
		m = m.Add(parseRollup(b))
	}
	return m, nil
}

// readRaw reads a small file (path without a NUL) into buf, as much as
// fits.
func readRaw(path, buf []byte) ([]byte, bool) {
	fd, err := syscall.Open(string(path), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return buf[:n], n > 0
}

// parseStat reads pgrp (field 5) and utime+stime (14, 15) from
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (pgrp int, cpu time.Duration, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	// After ')': state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime: field k is number k-3 from here.
	var f [13][]byte
	n := 0
	rest := b[i+1:]
	for n < len(f) {
		rest = bytes.TrimLeft(rest, " ")
		if len(rest) == 0 {
			return 0, 0, false
		}
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
		n++
	}
	pg, ok1 := atoi(f[2])
	ut, ok2 := atoi(f[11])
	st, ok3 := atoi(f[12])
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, false
	}
	return int(pg), time.Duration(ut+st) * time.Second / clockTicks, true
}

// parseRollup reads PSS and USS from /proc/PID/smaps_rollup, whose
// figures are in kB: "Pss:  364 kB".
func parseRollup(b []byte) Memory {
	var m Memory
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "Pss":
			dst = &m.PSS
		case "Private_Clean", "Private_Dirty", "Private_Hugetlb":
			dst = &m.USS
		default:
			continue
		}
		rest = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))
		if kb, ok := atoi(rest); ok {
			*dst += kb << 10
		}
	}
	return m
}

// atoi parses a non-negative decimal without allocating.
func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // the directory itself was open while it was read
}
