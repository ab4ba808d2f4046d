package hclconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// The fuzz targets check the contract of Parse on any input: no panic, a
// Config exactly when there are no errors, and every error pointing at a
// place in a file the returned map can show.

func FuzzParseHCL(f *testing.F) {
	seed(f, "testdata/valid/*.hcl", "testdata/invalid/*.hcl", "../examples/*/cluster.hcl")
	f.Add([]byte(`app "a" { command = format("%0999999d", 1) }`))
	f.Add([]byte(`app "a" { command = ["x"] instances = "max" env = { A = env.HOME } }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		// The name puts the file in testdata/valid, next to the env files
		// the seeds refer to.
		checkContract(t, "testdata/valid/fuzz.hcl", src)
	})
}

func FuzzParseProcfile(f *testing.F) {
	seed(f, "testdata/procfile/*/Procfile*", "../examples/*/Procfile")
	f.Add([]byte("web: x\r\nworker:y\n\n# c\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		checkContract(t, "testdata/procfile/valid/Procfile", src)
	})
}

func seed(f *testing.F, patterns ...string) {
	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			if filepath.Ext(p) == ".golden" {
				continue
			}
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
}

func checkContract(t *testing.T, filename string, src []byte) {
	cfg, files, diags := Parse(filename, src)
	if diags.HasErrors() != (cfg == nil) {
		t.Fatalf("errors=%v but Config nil=%v: %v", diags.HasErrors(), cfg == nil, diags)
	}
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if d.Subject == nil {
			t.Fatalf("error %q (%s) has no Subject", d.Summary, d.Detail)
		}
		if f := files[d.Subject.Filename]; f == nil || f.Bytes == nil {
			t.Fatalf("error %q points into %q, which is not in the files map", d.Summary, d.Subject.Filename)
		}
	}
	if err := WriteDiagnostics(discard{}, files, diags, 80, true); err != nil {
		t.Fatalf("WriteDiagnostics: %v", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
