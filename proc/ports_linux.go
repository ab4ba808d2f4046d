package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxCommand is how much of a holder's command line a message shows.
const maxCommand = 80

func portHolders(port int) ([]Holder, bool) {
	inodes := listeningInodes(port)
	if len(inodes) == 0 {
		return nil, false
	}
	var holders []Holder
	found := make(map[string]bool)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue // gone, or another user's
		}
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err != nil || !inodes[link] {
				continue
			}
			found[link] = true
			holders = append(holders, Holder{PID: pid, Command: commandLine(pid)})
			break
		}
	}
	return holders, len(found) < len(inodes)
}

// listeningInodes returns "socket:[inode]" of each listening TCP socket on
// port, from /proc/net/tcp and tcp6. The kernel lists the listening
// sockets first, so the read stops at the first other one: on a busy
// machine the rest is tens of thousands of lines.
func listeningInodes(port int) map[string]bool {
	suffix := fmt.Sprintf(":%04X", port)
	out := make(map[string]bool)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st ... uid timeout inode
			fs := bytes.Fields(sc.Bytes())
			if len(fs) < 10 {
				continue
			}
			if string(fs[3]) != "0A" { // TCP_LISTEN
				break
			}
			if strings.HasSuffix(string(fs[1]), suffix) {
				out["socket:["+string(fs[9])+"]"] = true
			}
		}
		f.Close()
	}
	return out
}

// commandLine returns pid's command line with spaces between arguments.
func commandLine(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(comm))
	}
	// One line: arguments may hold newlines (python3 -c '...').
	s := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\x00", " ")), " ")
	if r := []rune(s); len(r) > maxCommand {
		s = string(r[:maxCommand-1]) + "…"
	}
	return s
}
