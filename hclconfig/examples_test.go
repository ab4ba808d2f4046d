package hclconfig

import (
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
