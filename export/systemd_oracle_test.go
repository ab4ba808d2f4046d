package export

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// systemdTest runs systemd's own unit loader on the units in dir and
// returns its dump of unit (systemd --test --system prints every loaded
// unit's parsed settings). It refuses to run as root, so it runs as
// nobody. Skips where systemd or setpriv is missing, or this is not root.
func systemdTest(t *testing.T, dir, unit string) map[string][]string {
	t.Helper()
	systemd := "/lib/systemd/systemd"
	if _, err := os.Stat(systemd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd is not installed: CI must install Debian's systemd package")
		}
		t.Skip("systemd is not installed")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("systemd --test runs as another user, which needs root and setpriv (util-linux)")
	}
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", systemd, "--test", "--system", "--unit="+unit, "--log-target=console", "--log-level=err")
	cmd.Env = []string{"SYSTEMD_UNIT_PATH=" + dir + ":", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_LOG_COLOR=0"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemd --test: %v\n%s", err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		var complaints []string
		for _, l := range strings.Split(s, "\n") {
			// About the machine, not the units.
			if !strings.Contains(l, "SYSTEMD_GETTY_AUTO") && !strings.Contains(l, "user.conf") {
				complaints = append(complaints, l)
			}
		}
		if len(complaints) > 0 {
			t.Errorf("systemd complained about %s:\n%s", unit, strings.Join(complaints, "\n"))
		}
	}
	// The unit's block: "\t-> Unit NAME:", then "\t\tKey: value" lines; a
	// value with a newline goes on over lines without the indentation.
	settings := map[string][]string{}
	in := false
	last := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "\t-> Unit ") {
			in = l == "\t-> Unit "+unit+":"
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(l, "\t\t") {
			if vs := settings[last]; len(vs) > 0 {
				vs[len(vs)-1] += "\n" + l
			}
			continue
		}
		k, v, ok := strings.Cut(strings.TrimLeft(l, "\t"), ": ")
		if !ok {
			k, v = strings.TrimSuffix(strings.TrimLeft(l, "\t"), ":"), ""
		}
		settings[k] = append(settings[k], v)
		last = k
	}
	if len(settings) == 0 {
		t.Fatalf("systemd --test printed no unit %s", unit)
	}
	return settings
}

// dumpWords reads the command line systemd's dump prints: words quoted
// as a shell would with C escapes, and "$" written "\$".
func dumpWords(t *testing.T, s string) []string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteString(`\x24`)
			} else {
				b.WriteString(s[i : i+2])
			}
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	words, err := splitWords(b.String())
	if err != nil {
		t.Fatalf("systemd's command line %q: %v", s, err)
	}
	return words
}

// TestSystemdReadsUnitsAsWeDo renders configs full of what the unit
// syntax treats specially (quotes, backslashes, "%", "$", ";", tabs,
// newlines, non-ASCII) and compares what systemd itself reads from each
// unit with what the reader of sdunit_test.go reads, which the round-trip
// tests and FuzzSystemd rely on.
func TestSystemdReadsUnitsAsWeDo(t *testing.T) {
	compared := 0
	defer func() {
		if !t.Skipped() && compared < 6 {
			t.Errorf("compared %d units with systemd's reading, want at least 6: the seeds no longer render", compared)
		}
	}()
	for i, seed := range append(fuzzSeeds, [7]string{"/srv/q\"uote's", `\x41 \\ \" ' ; "`, "tab\there\nnext \\n", "-/etc/%%i.env", "0", "nogroup", `printf '%s\n' "$HOME" "a b"`}) {
		root := t.TempDir()
		name := "c" + string(rune('0'+i))
		cfg, err := loadText(t, root, "cluster.hcl", systemdFuzzConfig(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6]))
		if err != nil {
			continue
		}
		files, _, err := Render("systemd", cfg, Options{LookPath: testLookPath, Name: name})
		if err != nil {
			t.Logf("seed %d refused: %v", i, err)
			continue
		}
		units := filepath.Join(root, "units")
		if err := os.Mkdir(units, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(units, f.Name), f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range cfg.Apps {
			var text string
			for _, f := range files {
				if f.Name == a.Name+"@.service" {
					text = string(f.Data)
				}
			}
			ours, err := parseUnit(text)
			if err != nil {
				t.Fatal(err)
			}
			theirs := systemdTest(t, units, a.Name+"@0.service")
			compared++
			expand := func(vs []string) []string {
				var out []string
				for _, v := range vs {
					x, err := specifiers(v, "0")
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, x)
				}
				return out
			}
			for _, key := range []string{"Description", "WorkingDirectory", "EnvironmentFile", "User", "Group"} {
				section := "Service"
				if key == "Description" {
					section = "Unit"
				}
				if got, want := theirs[key], expand(ours.values(section, key)); !slices.Equal(got, want) {
					t.Errorf("seed %d, %s: systemd reads %s=%q, we read %q", i, a.Name, key, got, want)
				}
			}
			env, err := environment(ours.values("Service", "Environment"), "0")
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, k := range slices.Sorted(func(yield func(string) bool) {
				for k := range env {
					if !yield(k) {
						return
					}
				}
			}) {
				want = append(want, k+"="+env[k])
			}
			got := slices.Clone(theirs["Environment"])
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("seed %d, %s: systemd reads Environment %q, we read %q", i, a.Name, got, want)
			}
			words, err := splitWords(expand(ours.values("Service", "ExecStart"))[0])
			if err != nil {
				t.Fatal(err)
			}
			if cl := theirs["Command Line"]; len(cl) != 1 || !slices.Equal(dumpWords(t, cl[0]), words) {
				t.Errorf("seed %d, %s: systemd runs %q, we read %q", i, a.Name, cl, words)
			}
		}
	}
}
