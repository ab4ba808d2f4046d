package hclconfig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
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

// FuzzEnvFile checks the env file path on any file content: reading it
// through an env_file entry and as a Procfile's .env never panics, a parse
// error names a line of the file, and every error points somewhere the
// files map can show.
func FuzzEnvFile(f *testing.F) {
	seed(f, "testdata/valid/*.env", "testdata/valid/.env", "testdata/invalid/*.env", "testdata/procfile/*/.env")
	for _, s := range []string{
		"A=1\nB='two words'\nC=\"x\\ny\"\n", "export A=1\n", "# c\nA=${B}\nB=$A\n", "A\n", "A='unterminated\n",
		"A=\"\\\"\n", "A=1\r\nB=2\r\n", "=x\n", "A=1 # comment\n", "A: yaml\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.env")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1

		env, perr := parseEnvFile(data)
		var pe *envParseError
		switch {
		case perr == nil && env == nil:
			t.Fatalf("no error and no map")
		case perr != nil && !errors.As(perr, &pe):
			t.Fatalf("parse error of type %T: %v", perr, perr)
		case pe != nil && (pe.line < 0 || pe.line > lines):
			t.Fatalf("error on line %d of a %d-line file: %v", pe.line, lines, pe)
		}

		r := newEnvReader(dir)
		item := stringItem{val: "fuzz.env", expr: hcl.StaticExpr(cty.StringVal("fuzz.env"), hcl.Range{Filename: "c.hcl"})}
		m, paths, diags := r.read([]stringItem{item}, "")
		if len(paths) != 1 || paths[0] != path {
			t.Fatalf("paths = %q", paths)
		}
		if diags.HasErrors() != (perr != nil) || perr == nil && len(m) != len(env) {
			t.Fatalf("read: %v (parse error %v)", diags, perr)
		}

		files := map[string]*hcl.File{}
		denv, ddiags := readDotEnv(".env", path, files)
		if ddiags.HasErrors() != (perr != nil) || perr == nil && len(denv) != len(env) {
			t.Fatalf("readDotEnv: %v (parse error %v)", ddiags, perr)
		}
		for _, d := range ddiags {
			if d.Subject == nil || files[d.Subject.Filename] == nil {
				t.Fatalf("diagnostic %q points nowhere the files map shows", d.Summary)
			}
			if sub := d.Subject; sub.Start.Byte < 0 || sub.End.Byte > len(data) || sub.Start.Line > lines {
				t.Fatalf("subject %v outside the %d-byte file", sub, len(data))
			}
		}
		if err := WriteDiagnostics(discard{}, files, ddiags, 80, false); err != nil {
			t.Fatal(err)
		}
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
