package export

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// shWords has /bin/sh read words as a command line would, and returns
// them: the reader a Procfile line ends up in.
func shWords(t testing.TB, words string) []string {
	t.Helper()
	// The words go after "set --", so that sh reads them as arguments.
	out, err := exec.Command("/bin/sh", "-c", "set -- "+words+"\nfor a do printf '%s\\0' \"$a\"; done").Output()
	if err != nil {
		t.Fatalf("sh cannot read %q: %v", words, err)
	}
	got := strings.Split(string(out), "\x00")
	return got[:len(got)-1]
}

// checkProcfile reads a rendered Procfile back with clusterrun's Procfile
// reader (foreman's rules) and each line's words with /bin/sh, and
// compares them with the config: each app a line of its name, running
// its command in its dir.
func checkProcfile(t testing.TB, cfg *hclconfig.Config, data []byte) error {
	dir := t.TempDir()
	back, _, diags := hclconfig.Parse(filepath.Join(dir, "Procfile"), data)
	if diags.HasErrors() {
		return fmt.Errorf("the Procfile does not read back: %v\n%s", diags, data)
	}
	if len(back.Apps) != len(cfg.Apps) {
		return fmt.Errorf("%d lines for %d apps:\n%s", len(back.Apps), len(cfg.Apps), data)
	}
	for i, a := range cfg.Apps {
		b := back.Apps[i]
		if b.Name != a.Name {
			return fmt.Errorf("line %d is %q, want app %q", i+1, b.Name, a.Name)
		}
		line := b.Written.CommandString
		rest := line
		if a.Dir != cfg.Dir {
			// cd DIR && ...
			word, after, ok := strings.Cut(strings.TrimPrefix(line, "cd "), " && ")
			if !ok || !strings.HasPrefix(line, "cd ") {
				return fmt.Errorf("line %q does not change to the app's dir", line)
			}
			got := shWords(t, word)
			rel, _ := filepath.Rel(cfg.Dir, a.Dir)
			if strings.HasPrefix(rel, "..") {
				rel = a.Dir
			}
			if len(got) != 1 || got[0] != rel {
				return fmt.Errorf("line %q changes to %q, want %q", line, got, rel)
			}
			rest = after
		}
		if isShell(a) {
			// Blanks at either end mean nothing to sh (export refuses an
			// escaped one at the end).
			if want := strings.Trim(a.Written.CommandString, " \t"); rest != want {
				return fmt.Errorf("line %q runs %q, want %q", line, rest, want)
			}
			continue
		}
		if got := shWords(t, rest); !slices.Equal(got, a.Command) {
			return fmt.Errorf("line %q runs %q, want %q", line, got, a.Command)
		}
	}
	return nil
}

// TestProcfileInjection: a newline in dir wrote a line of its own
// (issue 13: cd 'sub\nevil: ...'), and newlines in a command were
// rewritten to "; ", which changes quoted arguments and backslash
// continuations. Both are refused at the value.
func TestProcfileInjection(t *testing.T) {
	for _, tc := range []struct {
		name, hcl string
		line, col int
	}{
		{"dir", `app "web" {
  command = ["/bin/sleep", "1"]
  dir     = "sub\nevil: touch /tmp/pwned"
}`, 3, 13},
		{"quoted newline", `app "web" {
  command = "echo 'a\nb'"
}`, 2, 13},
		{"continuation", `app "web" {
  command = "echo a \\\n  b"
}`, 2, 13},
		{"word", `app "web" {
  command = ["/bin/echo", "a\u2028b"]
}`, 2, 27},
		{"escaped blank at the end", `app "web" {
  command = "echo a\\ "
}`, 2, 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadText(t, t.TempDir(), "cluster.hcl", tc.hcl)
			if err != nil {
				t.Fatal(err)
			}
			files, _, err := Render("procfile", cfg, Options{})
			if err == nil {
				t.Fatalf("rendered, want a refusal:\n%s", Concat("procfile", files))
			}
			diags := refusedAt(t, err)
			if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != tc.line || diags[0].Subject.Start.Column != tc.col {
				t.Fatalf("refusals %v, want one at %d,%d", diags, tc.line, tc.col)
			}
		})
	}
}

// TestProcfileRoundTrip renders every example and testdata config as a
// Procfile and reads it back.
func TestProcfileRoundTrip(t *testing.T) {
	testMachine(t)
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, c)
			files, _, err := Render("procfile", cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkProcfile(t, cfg, files[0].Data); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Quoting that sh must read back word for word.
	cfg, err := loadText(t, t.TempDir(), "cluster.hcl", `app "web" {
  command = ["/bin/echo", "it's", "$HOME", "a b", "", "\\", "\"", "*", "é", "tab\there"]
  dir     = "some dir/it's"
}`)
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := Render("procfile", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkProcfile(t, cfg, files[0].Data); err != nil {
		t.Fatal(err)
	}
}

// FuzzProcfile: whatever the config says, the Procfile's lines run
// exactly that (read back by clusterrun's Procfile reader and /bin/sh) or
// export refuses, at a position in the file.
func FuzzProcfile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1], s[6])
	}
	root := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, dir, arg, script string) {
		n++
		d := filepath.Join(root, strconv.Itoa(n))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(d)
		cfg, err := loadText(t, d, "cluster.hcl", systemdFuzzConfig(dir, arg, "v", ".env", "", "", script))
		if err != nil {
			t.Log("outcome: does not load")
			return
		}
		files, _, err := Render("procfile", cfg, Options{})
		if err != nil {
			for _, d := range refusedAt(t, err) {
				if d.Subject == nil || d.Subject.Start.Line < 1 {
					t.Fatalf("refusal without a position: %s", d.Detail)
				}
			}
			t.Log("outcome: refused")
			return
		}
		if bytes.ContainsRune(files[0].Data, 0) {
			t.Fatalf("a NUL byte in the Procfile")
		}
		if err := checkProcfile(t, cfg, files[0].Data); err != nil {
			t.Fatal(err)
		}
		t.Log("outcome: rendered and read back")
	})
}
