package export

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// notExecutable is the one complaint of systemd-analyze verify that says
// more about this machine than about the unit: a program that is not
// installed here (the examples run go, node and their own builds).
var notExecutable = regexp.MustCompile(`^\S+: Command (\S+) is not executable: No such file or directory$`)

// TestSystemdAnalyzeVerify writes the units of every config into a
// directory and has systemd's own checker load them. It needs
// systemd-analyze (Debian's systemd package); it does not need a running
// systemd.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			// CI installs it: there, a skip would hide the check.
			t.Fatal("systemd-analyze is not installed: CI must install Debian's systemd package")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the units are not verified")
	}
	testMachine(t)
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, c)
			// The config's own directory, so that relative programs and
			// dirs are the real ones.
			files, _, err := Render("systemd", cfg, Options{CPUs: 4})
			if err != nil {
				t.Fatal(err)
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
			out, err := cmd.CombinedOutput()
			var complaints []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if line == "" {
					continue
				}
				if m := notExecutable.FindStringSubmatch(line); m != nil && missingHere(m[1]) {
					t.Logf("not installed here: %s", line)
					continue
				}
				complaints = append(complaints, line)
			}
			if len(complaints) > 0 {
				t.Errorf("systemd-analyze verify refused the units:\n%s\n\nunits:\n%s", strings.Join(complaints, "\n"), Concat("systemd", files))
			} else if err != nil && !strings.Contains(string(out), "is not executable") {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
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
