//go:build linux

package e2e

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// pieBinary returns a clusterrun built with -buildmode=pie, as Debian,
// Fedora and Arch build Go programs: CLUSTERRUN_PIE_BIN when CI built one,
// else one built here.
func pieBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CLUSTERRUN_PIE_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "clusterrun-pie")
	cmd := exec.Command("go", "build", "-buildmode=pie", "-o", out, ".")
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=pie: %v\n%s", err, b)
	}
	return out
}

// A position-independent build runs a config, serves, reloads and stops
// cleanly, its guard alive throughout. (Releasing the read-only pages of
// the executable once crashed such a build at once: its relocated RELRO
// pages were thrown away.)
func TestPIEBuildServesReloadsStops(t *testing.T) {
	heavy(t)
	exe := pieBinary(t)
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatalf("cannot read %s as ELF: %v", exe, err)
	}
	typ := f.Type
	f.Close()
	if typ != elf.ET_DYN {
		t.Fatalf("%s is ELF type %v, not a position-independent executable (ET_DYN)", exe, typ)
	}

	dir := t.TempDir()
	r := startBinary(t, exe, dir, writeConfig(t, dir, goWeb(2)))
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 60*time.Second)
	before := instancesAnswering(t, port, 2)
	guard := guardOf(t, r.cmd.Process.Pid)

	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 60*time.Second)
	// A draining instance may still answer on the shared socket for a
	// moment: what counts is that both serve the new release now.
	instancesAnswering(t, port, 2)
	for i, pid := range r.servingPids("web") {
		if before[i] == pid {
			t.Errorf("instance %d is still served by pid %d after the reload", i, pid)
		}
	}
	if out, errOut, code := r.cli("status"); code != 0 {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	if !pidAlive(guard) {
		t.Errorf("the guard (pid %d) died while the runner ran", guard)
	}

	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// guardOf finds the guard process the runner pid started.
func guardOf(t *testing.T, pid int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte("\x00__clusterrun_guard\x00")) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		var state byte
		var ppid int
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscanf(string(stat[i+1:]), " %c %d", &state, &ppid); err == nil && ppid == pid {
			return child
		}
	}
	t.Fatalf("runner pid %d has no guard process", pid)
	return 0
}
