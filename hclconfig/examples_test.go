package hclconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamples loads every example, so the documentation cannot rot. It
// fails when there are no examples at all: a moved directory must not turn
// this test into a silent pass.
func TestExamples(t *testing.T) {
	var paths []string
	for _, pattern := range []string{"../examples/*/cluster.hcl", "../examples/*/Procfile"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		t.Fatal("found no ../examples/*/cluster.hcl or ../examples/*/Procfile")
	}

	// The examples must pass preflight on a plain machine: not root, and a
	// PATH with the programs they name, whether or not this one has them.
	// Files are the real ones: go-http's ./bin/go-http does not exist
	// until its build app runs, which its depends_on allows for.
	bin := t.TempDir()
	for _, prog := range []string{"go", "node", "python3"} {
		if err := os.WriteFile(filepath.Join(bin, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fixedEnviron(t, "HOME=/home/tester", "PATH="+bin)
	h := realHost()
	h.euid = func() int { return 1000 }
	h.capEff = func() (uint64, bool) { return 0, true }
	h.unprivilegedPortStart = func() (int, bool) { return 1024, true }
	useHost(t, h)
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			cfg, files, diags := Load(p)
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("errors:\n%s", render(t, files, diags))
			}
			for _, d := range diags {
				t.Logf("warning: %s: %s", d.Summary, d.Detail)
			}
		})
	}
}
