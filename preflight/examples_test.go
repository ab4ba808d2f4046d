package preflight

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// TestExamples checks every example on a plain machine: not root, and a
// PATH with the programs they name, whether or not this one has them.
// Files are the real ones: go-http's ./bin/go-http does not exist until
// its build app runs, which its depends_on allows for.
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
	bin := t.TempDir()
	for _, prog := range []string{"go", "node", "python3"} {
		if err := os.WriteFile(filepath.Join(bin, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := realHost()
	h.environ = func() []string { return []string{"HOME=/home/tester", "PATH=" + bin} }
	h.euid = func() int { return 1000 }
	h.capEff = func() (uint64, bool) { return 0, true }
	h.unprivilegedPortStart = func() (int, bool) { return 1024, true }
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			cfg, _, diags := hclconfig.Load(p)
			if cfg == nil {
				t.Fatalf("the example does not load: %v", diags)
			}
			if diags := check(cfg, h); len(diags) > 0 {
				t.Errorf("on a plain machine: %v", diags)
			}
		})
	}
}
