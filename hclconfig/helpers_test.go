package hclconfig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/invalid and testdata/procfile")

// testEnviron is the runner environment every test sees, so that results do
// not depend on the machine (a PORT in the CI environment, say).
var testEnviron = []string{
	"HOME=/home/tester",
	"STOP_AFTER=5 parsecs",
}

// fixedEnviron swaps environ for env for the duration of the test. Tests
// that use it must not run in parallel with each other.
func fixedEnviron(t *testing.T, env ...string) {
	t.Helper()
	old := environ
	environ = func() []string { return append([]string(nil), env...) }
	t.Cleanup(func() { environ = old })
}

// render writes diags as clusterrun check would, without wrapping or
// color, with absolute paths into testdata made relative so that output
// does not depend on where the repository is checked out.
func render(t *testing.T, files map[string]*hcl.File, diags hcl.Diagnostics) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, files, diags, 0, false); err != nil {
		t.Fatalf("WriteDiagnostics: %v", err)
	}
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(buf.String(), abs, "testdata")
}

// mustLoad parses path (a path relative to the package, for stable
// messages) and fails the test on any error diagnostic.
func mustLoad(t *testing.T, path string) (*Config, hcl.Diagnostics) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, files, diags := Parse(path, src)
	if diags.HasErrors() {
		t.Fatalf("%s: unexpected errors:\n%s", path, render(t, files, diags))
	}
	if cfg == nil {
		t.Fatalf("%s: nil Config without errors", path)
	}
	return cfg, diags
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// The test binary as a program for /bin/sh to exec: see
		// TestExecFormWithShell.
		os.Exit(printProcess())
	}
	os.Exit(m.Run())
}
