package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// notExecutable is the one complaint of systemd-analyze verify that says
// more about this machine than about the unit: a program that is not
// installed here (the examples run go, node and their own builds).
var notExecutable = regexp.MustCompile(`^\S+: Command (\S+) is not executable: No such file or directory$`)

// verify has systemd-analyze verify load the units, and returns its
// complaints, less those allowed.
func verify(t *testing.T, files []File, allowed func(line string) bool) []string {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			// CI installs it: there, a skip would hide the check.
			t.Fatal("systemd-analyze is not installed: CI must install Debian's systemd package")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the units are not verified")
	}
	dir := t.TempDir()
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, paths...)...)
	// Without a running systemd (a container, CI) verify must not
	// try to talk to one.
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, _ := cmd.CombinedOutput()
	var complaints []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || allowed(line) {
			continue
		}
		complaints = append(complaints, line)
	}
	return complaints
}

// TestSystemdAnalyzeVerify writes the units of every example and testdata
// config into a directory and has systemd's own checker load them. It
// needs systemd-analyze (Debian's systemd package); it does not need a
// running systemd. A program must be found as systemd looks for it: the
// only one allowed to be missing is one the example builds itself, under
// its own directory (the go-http example's bin/go-http).
func TestSystemdAnalyzeVerify(t *testing.T) {
	testMachine(t)
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, c)
			// The config's own directory and this machine's PATH, so that
			// programs and dirs are the real ones.
			files, _, err := Render("systemd", cfg, Options{CPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			builtHere := func(line string) bool {
				m := notExecutable.FindStringSubmatch(line)
				if m == nil {
					return false
				}
				if c.name == "full" || c.name == "users" || c.name == "addresses" {
					// Testdata: programs of no machine.
					return missingHere(m[1])
				}
				rel, err := filepath.Rel(cfg.Dir, m[1])
				return err == nil && !strings.HasPrefix(rel, "..") && missingHere(m[1])
			}
			if complaints := verify(t, files, builtHere); len(complaints) > 0 {
				t.Errorf("systemd-analyze verify refused the units:\n%s\n\nunits:\n%s", strings.Join(complaints, "\n"), Concat("systemd", files))
			}
		})
	}
}

// TestSystemdRunnerVerify checks the --runner units: the Type=notify
// fallback strictly; Type=notify-reload, which systemd before 253 does not
// know, with that one complaint allowed there.
func TestSystemdRunnerVerify(t *testing.T) {
	testMachine(t)
	bin := filepath.Join(t.TempDir(), "clusterrun")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, config{name: "runner", path: "testdata/runner.hcl"})
	version := 0
	if out, err := exec.Command("systemd-analyze", "--version").Output(); err == nil {
		fields := strings.Fields(string(out))
		if len(fields) > 1 {
			version, _ = strconv.Atoi(fields[1])
		}
	}
	for _, fallback := range []bool{true, false} {
		files, _, err := Render("systemd", cfg, Options{Runner: true, Clusterrun: bin, NotifyFallback: fallback})
		if err != nil {
			t.Fatal(err)
		}
		old := func(line string) bool {
			return !fallback && version < 253 && strings.Contains(line, "Failed to parse service type, ignoring: notify-reload")
		}
		if complaints := verify(t, files, old); len(complaints) > 0 {
			t.Errorf("systemd-analyze verify (systemd %d) refused the --runner units (fallback %v):\n%s\n\n%s", version, fallback, strings.Join(complaints, "\n"), Concat("systemd", files))
		}
		u, err := parseUnit(string(files[0].Data))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"KillMode": "mixed", "TimeoutStopSec": "50s", "WatchdogSec": "30s", "NotifyAccess": "main",
			"ExecStart": bin + " up -f " + filepath.Join(cfg.Dir, "runner.hcl"), "Type": "notify-reload"}
		if fallback {
			want["Type"] = "notify"
			want["ExecReload"] = bin + " reload -f " + filepath.Join(cfg.Dir, "runner.hcl")
		}
		for k, v := range want {
			if got := u.values("Service", k); len(got) != 1 || got[0] != v {
				t.Errorf("%s=%q, want %q", k, got, v)
			}
		}
		// A socket unit per listener systemd can hold, named after it.
		names := map[string]bool{}
		for _, f := range files[1:] {
			s, err := parseUnit(string(f.Data))
			if err != nil {
				t.Fatal(err)
			}
			names[strings.Join(s.values("Socket", "FileDescriptorName"), ",")] = true
			if got := s.values("Socket", "Service"); len(got) != 1 || got[0] != files[0].Name {
				t.Errorf("%s: Service=%q, want %s", f.Name, got, files[0].Name)
			}
		}
		if !names["http"] || !names["admin"] || !names["sock"] || len(names) != 3 {
			t.Errorf("socket units for %v, want http, admin, sock", names)
		}
	}
}

// missingHere reports whether systemd would not find prog on this machine:
// an absolute path that does not exist, or a name on none of the
// directories systemd searches.
func missingHere(prog string) bool {
	if filepath.IsAbs(prog) {
		_, err := os.Stat(prog)
		return err != nil
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if _, err := os.Stat(filepath.Join(d, prog)); err == nil {
			return false
		}
	}
	return true
}
