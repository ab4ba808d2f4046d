package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// GuardArg is the hidden first argument that makes the clusterrun binary
// the guard; main checks for it before anything else.
const GuardArg = "__clusterrun_guard"

// Guard is a small process that outlives a runner killed with SIGKILL and
// then kills what the runner would have stopped: every instance's process
// group, and every process carrying the runner's marker in its environment
// (children of a wrapper shell that moved to a group of their own, setsid
// daemons). Pdeathsig alone reaches only each instance's main process.
//
// The runner tells it the groups over a pipe ("+PGID", "-PGID"); "done"
// before the pipe closes means the runner stopped everything itself. The
// pipe's end is how the guard learns that the runner died: the kernel
// closes it, whatever killed the runner.
type Guard struct {
	mu  sync.Mutex
	w   *os.File
	pid int
}

// StartGuard starts the guard from the clusterrun binary exe, through r so
// that its exit is reaped like any child's. marker is the NAME=VALUE the
// runner puts in every instance's environment.
func StartGuard(r *Reaper, exe, marker string) (*Guard, error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		wr.Close()
		return nil, err
	}
	defer devnull.Close()
	pid, _, err := r.Start(Spec{
		Path:  exe,
		Args:  []string{exe, GuardArg, marker},
		Dir:   "/",
		Env:   []string{"PATH=/usr/bin:/bin"},
		Files: []uintptr{rd.Fd(), devnull.Fd(), os.Stderr.Fd()},
		// It must survive the runner: no parent-death signal.
		KeepOnParentDeath: true,
	})
	if err != nil {
		wr.Close()
		return nil, fmt.Errorf("cannot start the guard: %w", err)
	}
	return &Guard{w: wr, pid: pid}, nil
}

// Add tells the guard about an instance's process group.
func (g *Guard) Add(pgid int) { g.send("+" + strconv.Itoa(pgid)) }

// Remove tells the guard a process group is gone.
func (g *Guard) Remove(pgid int) { g.send("-" + strconv.Itoa(pgid)) }

// PID is the guard's pid, so that the runner does not count it among the
// processes that escaped their instance.
func (g *Guard) PID() int {
	if g == nil {
		return 0
	}
	return g.pid
}

// Close tells the guard that the runner stopped everything itself, and lets
// it exit.
func (g *Guard) Close() {
	if g == nil {
		return
	}
	g.send("done")
	g.mu.Lock()
	defer g.mu.Unlock()
	g.w.Close()
	g.w = nil
}

func (g *Guard) send(line string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		// Lines are shorter than PIPE_BUF, so each write is atomic; an
		// error means the guard is gone, and nothing better can be done.
		g.w.Write([]byte(line + "\n"))
	}
}

// RunGuard is the guard's main: args is [marker]. It returns the exit code.
func RunGuard(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "clusterrun: guard: missing marker")
		return 2
	}
	// Terminal signals are for the runner; the guard acts on the pipe
	// alone. It execs nothing, so ignoring them harms no one.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE)
	groups := map[int]bool{}
	done := false
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := sc.Text()
		if line == "done" {
			done = true
			continue
		}
		n, err := strconv.Atoi(line[1:])
		if err != nil || n <= 1 {
			continue
		}
		switch line[0] {
		case '+':
			groups[n] = true
		case '-':
			delete(groups, n)
		}
	}
	if done {
		return 0
	}
	// The runner died without stopping its instances.
	for g := range groups {
		KillGroup(g, syscall.SIGKILL)
	}
	// Processes that fork while being killed: sweep until none is left, a
	// bounded number of times.
	for i := 0; i < 10; i++ {
		pids := Marked(args[0], -1)
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
	return 0
}

// Marked returns the live processes (not zombies) whose environment holds
// marker ("NAME=VALUE"), and those whose parent is parent (-1: none). It
// reads /proc, so it finds nothing where there is none.
func Marked(marker string, parent int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	want := []byte(marker + "\x00")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		state, ppid, ok := parseStateParent(stat)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		if ppid == parent {
			out = append(out, pid)
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && containsBytes(env, want) {
			out = append(out, pid)
		}
	}
	return out
}

// parseStateParent reads the state (field 3) and ppid (field 4) of
// /proc/PID/stat, counting from the last ')' since the command may hold
// anything.
func parseStateParent(b []byte) (byte, int, bool) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return f[0][0], ppid, err == nil
}

// containsBytes reports whether the NUL-separated environment env holds
// the variable needle (which ends with its NUL).
func containsBytes(env, needle []byte) bool {
	return bytes.HasPrefix(env, needle) || bytes.Contains(env, append([]byte{0}, needle...))
}
