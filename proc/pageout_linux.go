package proc

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseStartupPages drops the pages of this program's code and read-only
// data from its resident set. A runner touches much of its code once, at
// start (parsing the config, setting up the command line), and little of
// it afterwards; those clean file pages would stay resident for its whole
// life. MADV_DONTNEED on these private mappings, which are never written,
// only removes this process's references: the pages stay in the page
// cache, and whatever code runs again is mapped back from there on first
// touch. (MADV_PAGEOUT would not do: it skips pages another process maps,
// and the guard is the same binary.) It returns the bytes released.
func ReleaseStartupPages() int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "00400000-00958000 r-xp 00000000 fd:01 1234   /path/to/exe"
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || fields[1][1] == 'w' {
			continue // only the program's read-only mappings: never data
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The raw call: x/sys's Madvise takes a []byte, which would mean
		// making one out of a bare address.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); errno == 0 {
			total += int64(end - start)
		}
	}
	return total
}
