package report

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mapping kinds of a process's memory, as Maps sorts them.
const (
	Text   = "text"   // the executable's code (r-xp)
	ROData = "rodata" // its read-only data: constants, types, pclntab (r--p)
	Data   = "data"   // its initialised data (rw-p, file-backed part)
	Libs   = "libs"   // every other file mapped: shared libraries, locale
	Anon   = "anon"   // anonymous: heap arenas, stacks of threads, bss, runtime metadata
	Stack  = "stack"  // the main thread's stack
)

// Kinds lists the kinds in the order tables show them.
var Kinds = []string{Text, ROData, Data, Libs, Anon, Stack}

// Usage is one kind's memory, in bytes: Rss counts every page mapped, PSS
// splits each page among the processes that map it, USS counts the pages
// only this process maps.
type Usage struct{ RSS, PSS, USS int64 }

// Maps reads /proc/PID/smaps and adds each mapping up by kind. The file
// pages of the executable are what a fault maps around a touched page
// (the kernel maps a 64 KiB window, fault_around_bytes), so Text and
// ROData say how much of the binary the process has touched, roughly.
func Maps(pid int) (map[string]Usage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, err
	}
	return parseSmaps(b, exe), nil
}

func parseSmaps(b []byte, exe string) map[string]Usage {
	out := map[string]Usage{}
	kind := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			// A mapping's header: range, perms, offset, dev, inode, path.
			path := ""
			if len(f) >= 6 {
				path = strings.Join(f[5:], " ")
			}
			kind = kindOf(path, f[1], exe)
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || kind == "" {
			continue
		}
		u := out[kind]
		switch f[0] {
		case "Rss:":
			u.RSS += v << 10
		case "Pss:":
			u.PSS += v << 10
		case "Private_Clean:", "Private_Dirty:":
			u.USS += v << 10
		}
		out[kind] = u
	}
	return out
}

func kindOf(path, perms, exe string) string {
	switch {
	case path == exe && perms == "r-xp":
		return Text
	case path == exe && perms == "r--p":
		return ROData
	case path == exe:
		return Data
	case path == "[stack]":
		return Stack
	case path == "" || path == "[heap]":
		return Anon
	case strings.HasPrefix(path, "["): // vdso, vvar: the kernel's, shared by all
		return ""
	}
	return Libs
}
