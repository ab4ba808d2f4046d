package export

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// config is one input of the golden tests.
type config struct {
	name string // the golden files' prefix
	path string // relative to the package, for stable positions
	root bool   // loads only as root (it names another user)
}

// configs are every example and the testdata configs.
func configs(t *testing.T) []config {
	t.Helper()
	var out []config
	for _, pattern := range []string{"../examples/*/cluster.hcl", "../examples/*/Procfile"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			out = append(out, config{name: "example-" + filepath.Base(filepath.Dir(p)), path: p})
		}
	}
	if len(out) == 0 {
		t.Fatal("found no ../examples/*/cluster.hcl or Procfile: the examples moved, update this test")
	}
	for _, n := range []string{"full", "addresses", "users", "runner"} {
		out = append(out, config{name: n, path: "testdata/" + n + ".hcl", root: n == "users"})
	}
	return out
}

// testMachine makes loading independent of this machine: the programs the
// examples run are on PATH (stubs where missing), and the variables the
// testdata reads have fixed values.
func testMachine(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	for _, prog := range []string{"go", "node", "python3", "go-http"} {
		if err := os.WriteFile(filepath.Join(bin, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", os.Getenv("PATH")+string(filepath.ListSeparator)+bin)
	t.Setenv("HOME", "/home/tester")
	t.Setenv("EXPORT_TEST_TOKEN", "")
	os.Unsetenv("EXPORT_TEST_TOKEN")
}

// load loads c, or skips it when it needs root.
func load(t *testing.T, c config) *hclconfig.Config {
	t.Helper()
	if c.root && os.Geteuid() != 0 {
		t.Skipf("%s names another user, which only root may load (hclconfig's preflight)", c.path)
	}
	cfg, files, diags := hclconfig.Load(c.path)
	if diags.HasErrors() {
		var b strings.Builder
		hclconfig.WriteDiagnostics(&b, files, diags, 0, false)
		t.Fatalf("cannot load %s:\n%s", c.path, b.String())
	}
	return cfg
}

// testOptions are fixed so that the golden files do not depend on where
// the repository is or how many CPUs the machine has.
func testOptions(c config, cfg *hclconfig.Config) Options {
	name := strings.TrimPrefix(c.name, "example-")
	return Options{Name: name, Dir: "/srv/" + name, CPUs: 4, LookPath: testLookPath}
}

// testLookPath is a machine where node and python3 are where Debian puts
// them, in systemd's search path, and go is where its tarball goes, which
// is not.
func testLookPath(prog string) (string, error) {
	switch prog {
	case "node", "python3", "sh", "sleep":
		return "/usr/bin/" + prog, nil
	case "go":
		return "/usr/local/go/bin/go", nil
	}
	return "", exec.ErrNotFound
}

// target is a rendering: a format, per app or --runner.
type target struct {
	name, format string
	runner       bool
}

func targets() []target {
	var out []target
	for _, f := range Formats {
		out = append(out, target{f, f, false})
		if f != "procfile" {
			out = append(out, target{f + "-runner", f, true})
		}
	}
	return out
}

// TestGolden renders every config for every target and compares stdout
// and the warnings with testdata/golden/CONFIG.TARGET.golden.
func TestGolden(t *testing.T) {
	testMachine(t)
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, c)
			for _, target := range targets() {
				format := target.format
				opts := testOptions(c, cfg)
				opts.Runner = target.runner
				files, warns, err := Render(format, cfg, opts)
				var b bytes.Buffer
				if re := (*RefusedError)(nil); errors.As(err, &re) {
					b.WriteString("# Refused:\n# " + strings.ReplaceAll(err.Error(), "\n", "\n# ") + "\n")
				} else if err != nil {
					t.Fatal(err)
				}
				b.Write(Concat(format, files))
				b.WriteString("\n# Warnings (stderr):\n")
				for _, w := range warns {
					b.WriteString("# " + w.String() + "\n")
				}
				golden := filepath.Join("testdata", "golden", c.name+"."+target.name+".golden")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./export -update to write it)", err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Errorf("%s differs from the rendering (go test ./export -update rewrites it):\n%s", golden, b.String())
				}
			}
		})
	}
}

func TestUnknownFormat(t *testing.T) {
	_, _, err := Render("upstart", &hclconfig.Config{}, Options{})
	if err == nil || !strings.Contains(err.Error(), "systemd, kubernetes, nomad, procfile") {
		t.Fatalf("Render(upstart) error = %v, want one listing the formats", err)
	}
}
