package proc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary impersonates the programs the tests start.
func TestMain(m *testing.M) {
	switch os.Getenv("PROC_TEST_HELPER") {
	case "":
		os.Exit(m.Run())
	case "exit":
		code, _ := strconv.Atoi(os.Args[len(os.Args)-1])
		os.Exit(code)
	case "sleep":
		fmt.Println("sleeping")
		time.Sleep(time.Minute)
		os.Exit(0)
	case "parent":
		// Leaves a grandchild in its group, prints its pid, then exits.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "PROC_TEST_HELPER=sleep")
		if err := c.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Println(c.Process.Pid)
		os.Exit(0)
	case "orphan":
		// The grandchild escapes into its own group, so only the reaper
		// (as subreaper) can collect it.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "PROC_TEST_HELPER=exit")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Args = []string{os.Args[0], "0"}
		if err := c.Start(); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(99)
}

var reaper = func() *Reaper {
	r, err := NewReaper()
	if err != nil {
		panic(err)
	}
	return r
}()

type started struct {
	pid    int
	exited <-chan Status
	out    *bufio.Reader
}

func start(t *testing.T, helper string, args ...string) started {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pid, ch, err := reaper.Start(Spec{
		Path:  exe,
		Args:  append([]string{exe}, args...),
		Env:   append(os.Environ(), "PROC_TEST_HELPER="+helper),
		Files: []uintptr{devnull.Fd(), wr.Fd(), os.Stderr.Fd()},
	})
	wr.Close()
	if err != nil {
		t.Fatalf("start %s: %v", helper, err)
	}
	t.Cleanup(func() { _ = KillGroup(pid, syscall.SIGKILL) })
	return started{pid: pid, exited: ch, out: bufio.NewReader(rd)}
}

func waitStatus(t *testing.T, s started) Status {
	t.Helper()
	select {
	case st := <-s.exited:
		return st
	case <-time.After(20 * time.Second):
		t.Fatalf("pid %d: no exit status within 20s", s.pid)
	}
	panic("unreachable")
}

func TestExitStatus(t *testing.T) {
	for _, code := range []int{0, 1, 3, 42} {
		s := start(t, "exit", strconv.Itoa(code))
		st := waitStatus(t, s)
		if st.Code != code || st.Signal != 0 {
			t.Errorf("exit %d: got %+v", code, st)
		}
		if st.Success() != (code == 0) {
			t.Errorf("exit %d: Success() = %v", code, st.Success())
		}
	}
}

func TestOwnGroupAndKillGroup(t *testing.T) {
	s := start(t, "sleep")
	if line, err := s.out.ReadString('\n'); err != nil || line != "sleeping\n" {
		t.Fatalf("helper did not start: %q %v", line, err)
	}
	pgid, err := syscall.Getpgid(s.pid)
	if err != nil || pgid != s.pid {
		t.Fatalf("getpgid(%d) = %d, %v; want its own group", s.pid, pgid, err)
	}
	if err := KillGroup(s.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, s)
	if st.Signal != syscall.SIGTERM || st.String() != "was killed by SIGTERM" {
		t.Errorf("got %+v (%s), want killed by SIGTERM", st, st)
	}
}

func TestLeftoverGroupMembersAreKilled(t *testing.T) {
	s := start(t, "parent")
	line, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading grandchild pid: %v", err)
	}
	gc, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	if st := waitStatus(t, s); !st.Success() {
		t.Fatalf("parent: %s", st)
	}
	// The grandchild is reparented to us (subreaper) and reaped as an orphan.
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(gc, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive 10s after its group leader was reaped", gc)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOrphansAreReaped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("child subreapers are Linux-only")
	}
	before := reaper.Orphans()
	s := start(t, "orphan")
	if st := waitStatus(t, s); !st.Success() {
		t.Fatalf("orphan helper: %s", st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for reaper.Orphans() == before {
		if time.Now().After(deadline) {
			t.Fatal("the escaped grandchild was not reaped within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartErrorIsSynchronous(t *testing.T) {
	_, _, err := reaper.Start(Spec{Path: "/nonexistent/prog", Args: []string{"prog"}})
	if err == nil {
		t.Fatal("want an error for a missing program")
	}
}

func TestKillGroupRefusesLowPgid(t *testing.T) {
	for _, g := range []int{-1, 0, 1} {
		if KillGroup(g, syscall.SIGTERM) == nil {
			t.Errorf("KillGroup(%d) should refuse", g)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"tool": 0o755, "data": 0o644} {
		if err := os.WriteFile(filepath.Join(bin, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"HOME=/x", "PATH=/nonexistent:" + bin}
	for i, tc := range []struct {
		file, want string
		err        bool
	}{
		{"tool", filepath.Join(bin, "tool"), false},
		{"./bin/tool", filepath.Join(dir, "bin/tool"), false},
		{filepath.Join(bin, "tool"), filepath.Join(bin, "tool"), false},
		{"data", "", true},
		{"./bin/data", "", true},
		{"missing", "", true},
		{"./bin", "", true},
	} {
		got, err := LookPath(tc.file, env, dir)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("#%d LookPath(%q) = %q, %v; want %q, error %v", i, tc.file, got, err, tc.want, tc.err)
		}
	}
}
