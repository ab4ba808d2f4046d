package proc

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture Go supports.
const clockTicks = 100

// scratch holds the buffers of the /proc walks, reused so that a status
// or a memory sample every few seconds makes no garbage: the runner's heap
// is small, and garbage would grow it to the collector's 4 MiB minimum
// before the first collection.
var scratch struct {
	sync.Mutex
	dirents []byte // getdents64 records of /proc
	file    []byte // one stat or smaps_rollup
	path    []byte // "/proc/PID/FILE\x00"
	groups  []int  // the process groups asked for, sorted
}

func groupUsage(pgids []int, memory bool) (map[int]Usage, error) {
	lockScratch()
	defer scratch.Unlock()
	out := make(map[int]Usage, len(pgids))
	scratch.groups = append(scratch.groups[:0], pgids...)
	slices.Sort(scratch.groups)
	err := readDir([]byte("/proc\x00"), func(name []byte) {
		if name[0] < '0' || name[0] > '9' {
			return
		}
		st, ok := readProc(name, "stat")
		if !ok {
			return // the process ended while we looked
		}
		pgrp, cpu, ok := parseStat(st)
		if _, want := slices.BinarySearch(scratch.groups, pgrp); !ok || !want {
			return
		}
		u := out[pgrp]
		u.CPU += cpu
		u.Procs++
		if memory {
			if b, ok := readProc(name, "smaps_rollup"); ok {
				u.Memory = u.Memory.Add(parseRollup(b))
			}
		}
		out[pgrp] = u
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func lockScratch() {
	scratch.Lock()
	if scratch.dirents == nil {
		scratch.dirents = make([]byte, 8192)
		scratch.file = make([]byte, 4096)
		scratch.path = make([]byte, 0, 64)
	}
}

// readDir calls fn with the name of every entry of the directory path
// (NUL-terminated) but "." and "..", reading them into the scratch buffer.
func readDir(path []byte, fn func(name []byte)) error {
	d, err := openat(path, syscall.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer syscall.Close(d)
	for {
		n, err := syscall.ReadDirent(d, scratch.dirents)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for b := scratch.dirents[:n]; len(b) >= 19; {
			// struct linux_dirent64: ino u64, off u64, reclen u16, type
			// u8, then the name, NUL-terminated.
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				break
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if len(name) > 0 && string(name) != "." && string(name) != ".." {
				fn(name)
			}
		}
	}
}

// readProc reads /proc/PID/file into the scratch buffer; pid is the
// directory's name.
func readProc(pid []byte, file string) ([]byte, bool) {
	p := append(scratch.path[:0], "/proc/"...)
	p = append(p, pid...)
	p = append(append(append(p, '/'), file...), 0)
	scratch.path = p
	return readRaw(p, scratch.file)
}

func processMemory(pids []int) (Memory, error) {
	lockScratch()
	defer scratch.Unlock()
	var m Memory
	var num [20]byte
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		b, ok := readProc(strconv.AppendInt(num[:0], int64(pid), 10), "smaps_rollup")
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

// openat opens the NUL-terminated path without the garbage of turning a
// string into one.
func openat(path []byte, flags int) (int, error) {
	dirfd := atFDCWD
	for {
		fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
			uintptr(flags|syscall.O_RDONLY|syscall.O_CLOEXEC), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// atFDCWD is AT_FDCWD, which syscall does not export on every
// architecture.
const atFDCWD = -100

// readRaw reads a small file (path NUL-terminated) into buf, as much as
// fits.
func readRaw(path, buf []byte) ([]byte, bool) {
	fd, err := openat(path, 0)
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
	lockScratch()
	defer scratch.Unlock()
	count := 0
	if readDir([]byte("/proc/self/fd\x00"), func([]byte) { count++ }) != nil {
		return -1
	}
	return count - 1 // the directory itself was open while it was read
}
