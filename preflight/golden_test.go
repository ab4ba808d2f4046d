package preflight

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata")

// TestPreflightGolden loads every config of testdata, checks it on a fixed
// fake machine (uid 1000 without capabilities, the users and programs
// goldenHost knows, and real files under testdata) and compares the
// rendered diagnostics with NAME.golden. Run "go test ./preflight -update"
// to rewrite the goldens, then read the diff.
func TestPreflightGolden(t *testing.T) {
	// Git may not keep modes (core.fileMode=false); the test needs them.
	for name, mode := range map[string]os.FileMode{"notexec.sh": 0o644, "tool.sh": 0o755} {
		if err := os.Chmod(filepath.Join("testdata", name), mode); err != nil {
			t.Fatal(err)
		}
	}
	inputs, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	inputs = append(inputs, "testdata/procfile/Procfile")
	if len(inputs) < 5 {
		t.Fatalf("found %d preflight configs, want at least 5", len(inputs))
	}
	for _, path := range inputs {
		t.Run(path, func(t *testing.T) { checkGolden(t, path) })
	}
}

// goldenHost is the machine of TestPreflightGolden.
func goldenHost() *host {
	real := realHost()
	known := func(names ...string) func(string) error {
		return func(name string) error {
			for _, n := range names {
				if n == name {
					return nil
				}
			}
			return fmt.Errorf("unknown %q", name)
		}
	}
	programs := map[string]bool{"/usr/bin/node": true, "/usr/bin/python3": true, "/usr/bin/sh": true}
	return &host{
		environ:               func() []string { return []string{"HOME=/home/tester", "PATH=/usr/local/bin:/usr/bin:/bin"} },
		euid:                  func() int { return 1000 },
		capEff:                func() (uint64, bool) { return 0, true },
		unprivilegedPortStart: func() (int, bool) { return 1024, true },
		lookupUser:            known("root", "www-data"),
		lookupGroup:           known("root", "www-data"),
		isDir:                 real.isDir,
		isExecutable: func(p string) error {
			// Real files of testdata; programs on PATH from the list.
			if strings.HasPrefix(p, "/usr/") || strings.HasPrefix(p, "/bin/") || strings.HasPrefix(p, "/opt/") {
				if programs[p] {
					return nil
				}
				return fs.ErrNotExist
			}
			return real.isExecutable(p)
		},
	}
}

// checkGolden checks path, which must have errors, and compares the
// rendered diagnostics with path.golden.
func checkGolden(t *testing.T, path string) {
	t.Helper()
	cfg, files, diags := hclconfig.LoadPartial(path)
	if cfg == nil {
		t.Fatalf("the file does not decode: %v", diags)
	}
	diags = append(diags, check(cfg, goldenHost())...)
	hclconfig.SortDiagnostics(diags)
	if !diags.HasErrors() {
		t.Fatalf("no errors; every file here must have at least one")
	}
	var buf bytes.Buffer
	if err := hclconfig.WriteDiagnostics(&buf, files, diags, 0, false); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(buf.String(), abs, "testdata")
	golden := path + ".golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./preflight -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("diagnostics differ from %s (rerun with -update and review the diff)\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
	}
}
