package hclconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvalidGolden loads every broken config and compares the rendered
// diagnostics with NAME.golden next to it. Run "go test ./hclconfig -update"
// to rewrite the goldens, then read the diff: each message must point at the
// right line and say what is wrong and what is allowed.
func TestInvalidGolden(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	var inputs []string
	for _, pattern := range []string{
		"testdata/invalid/*.hcl",
		"testdata/procfile/invalid/Procfile*",
		"testdata/procfile/badenv/Procfile",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			if !strings.HasSuffix(p, ".golden") {
				inputs = append(inputs, p)
			}
		}
	}
	if len(inputs) < 35 {
		t.Fatalf("found %d broken configs, want at least 35", len(inputs))
	}
	for _, path := range inputs {
		t.Run(path, func(t *testing.T) { checkGolden(t, path) })
	}
}

// checkGolden loads path, which must have errors, and compares the
// rendered diagnostics with path.golden.
func checkGolden(t *testing.T, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, files, diags := Parse(path, src)
	if !diags.HasErrors() {
		t.Fatalf("no errors; every file here must have at least one")
	}
	if cfg != nil {
		t.Errorf("Config is not nil although there are errors")
	}
	for _, d := range diags {
		if d.Subject == nil {
			t.Errorf("diagnostic %q has no Subject", d.Summary)
		} else if f := files[d.Subject.Filename]; f == nil || f.Bytes == nil {
			t.Errorf("diagnostic %q points into %s, which is not in the files map", d.Summary, d.Subject.Filename)
		}
	}
	got := render(t, files, diags)
	golden := path + ".golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./hclconfig -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("diagnostics differ from %s (rerun with -update and review the diff)\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
	}
}
