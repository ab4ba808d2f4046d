package cli

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

func TestNegativeArgs(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	for _, tc := range []struct {
		in, want []string
	}{
		// Nothing that looks like a negative number: untouched.
		{[]string{"scale", "web", "+1", "-f", "x"}, nil},
		{[]string{"up", "-m", "web=2", "web"}, nil},
		{[]string{"stauts", "-1"}, nil}, // unknown command: cobra reports it
		{[]string{"-1"}, nil},
		// A negative count moves behind "--" with the other arguments,
		// in order; flags and their values stay in front.
		{[]string{"scale", "web", "-1"}, []string{"scale", "--", "web", "-1"}},
		{[]string{"scale", "web", "-1", "-f", "x.hcl"}, []string{"scale", "-f", "x.hcl", "--", "web", "-1"}},
		{[]string{"scale", "-f", "x.hcl", "web", "-12"}, []string{"scale", "-f", "x.hcl", "--", "web", "-12"}},
		{[]string{"scale", "--file", "x.hcl", "web", "-1"}, []string{"scale", "--file", "x.hcl", "--", "web", "-1"}},
		{[]string{"scale", "--file=x.hcl", "web", "-1", "--timeout", "1m"}, []string{"scale", "--file=x.hcl", "--timeout", "1m", "--", "web", "-1"}},
		{[]string{"-f", "x.hcl", "scale", "web", "-1"}, []string{"scale", "-f", "x.hcl", "--", "web", "-1"}},
		{[]string{"scale", "web", "-1", "--", "extra"}, []string{"scale", "--", "web", "-1", "extra"}},
		// A flag's value is never taken for an argument, negative or not.
		{[]string{"logs", "-n", "-5"}, nil},
		{[]string{"logs", "web", "-n", "-5"}, nil},
		{[]string{"logs", "-fx.hcl", "-n", "-5"}, nil},
		{[]string{"logs", "--no-follow", "web", "-3"}, []string{"logs", "--no-follow", "--", "web", "-3"}},
	} {
		got := negativeArgs(root, tc.in)
		want := tc.want
		if want == nil {
			want = tc.in
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("negativeArgs(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

func TestFindConfig(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mkdir := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hcl := write("a/cluster.hcl", "")
	procfile := write("a/b/Procfile", "")
	both := write("c/cluster.hcl", "")
	write("c/Procfile", "")
	mkdir("e/Procfile") // a directory: Find refuses it rather than go on
	for _, tc := range []struct {
		dir, want, err string
	}{
		{"a", hcl, ""},
		{"a/x/y/z", hcl, ""},
		{"a/b", procfile, ""},
		{"a/b/c/d", procfile, ""},
		{"c/deeper", both, ""}, // cluster.hcl wins over a Procfile beside it
		{"e/f", "", "not a regular file"},
	} {
		dir := mkdir(tc.dir)
		got, err := findConfig(dir)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("findConfig(%s) = %q, %v; want an error with %q", tc.dir, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("findConfig(%s) = %q, %v; want %s", tc.dir, got, err, tc.want)
		}
	}

	// Nothing up to the filesystem root: one error naming where it looked.
	// (Skipped when a directory above the test's temp dir has a config.)
	lone := mkdir("lone/sub")
	for d := filepath.Dir(root); ; d = filepath.Dir(d) {
		for _, n := range hclconfig.DefaultFiles {
			if _, err := os.Stat(filepath.Join(d, n)); err == nil {
				t.Skipf("%s has a %s: cannot test the walk to the root", d, n)
			}
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	_, err := findConfig(lone)
	if err == nil || !strings.Contains(err.Error(), "no cluster.hcl or Procfile in "+lone+" or any parent directory") ||
		!strings.Contains(err.Error(), `"clusterrun init" writes`) {
		t.Errorf("findConfig(%s) = %v; want none found", lone, err)
	}
}

// The loader checks -m against the file at every reload and hands the
// runner the file as written: the runner applies the counts itself, so it
// knows the apps -m leaves out (the runner's tests cover the counts).
func TestLoaderChecksFormationOnEveryReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.hcl")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var f formationValue
	if err := f.Set("web=3"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("worker=0"); err != nil {
		t.Fatal(err)
	}
	load := loader(path, &f, nil)

	write("app \"web\" {\n  command = [\"true\"]\n}\napp \"worker\" {\n  command = [\"true\"]\n  instances = 2\n}\n")
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps) != 2 || cfg.App("web").Instances != 1 || cfg.App("worker").Instances != 2 {
		t.Fatalf("the file as written, with -m web=3,worker=0: %d apps: %+v", len(cfg.Apps), cfg.Apps)
	}

	// A reload that no longer has an app of the formation is refused,
	// saying it is the -m that does not fit.
	write("app \"worker\" {\n  command = [\"true\"]\n}\n")
	if _, err := load(); err == nil || !strings.Contains(err.Error(), "-m web=3,worker=0") || !strings.Contains(err.Error(), `no app "web"`) {
		t.Errorf("reload without web: %v", err)
	}

	// Without -m, the file's counts.
	var none formationValue
	write("app \"web\" {\n  command = [\"true\"]\n  instances = 8\n}\n")
	if cfg, err := loader(path, &none, nil)(); err != nil || cfg.App("web").Instances != 8 {
		t.Errorf("no formation: %v, %+v", err, cfg)
	}
}

func TestBuildString(t *testing.T) {
	for _, tc := range []struct {
		b           build
		full, short []string
	}{
		{
			build{Module: "github.com/clusterrun/clusterrun", Version: "(devel)", Go: "go1.26.8"},
			[]string{"clusterrun (devel)\n", "module  github.com/clusterrun/clusterrun", "commit  unknown: built without VCS information"},
			[]string{"(devel)"},
		},
		{
			build{Module: "github.com/clusterrun/clusterrun", Version: "(devel)", Revision: "3a9bffda84abca1eb3cfecf9d1ea6208e4a9fbb6", Time: "2026-11-22T00:53:32Z", Modified: true, Go: "go1.26.8"},
			[]string{"clusterrun (devel)\n", "commit  3a9bffda84abca1eb3cfecf9d1ea6208e4a9fbb6 (2026-11-22T00:53:32Z), with uncommitted changes"},
			[]string{"(devel) 3a9bffda84ab+modified"},
		},
		{
			build{Module: "github.com/clusterrun/clusterrun", Version: "v0.0.0-20261122005332-3a9bffda84ab", Revision: "3a9bffda84abca1eb3cfecf9d1ea6208e4a9fbb6", Go: "go1.26.8"},
			[]string{"clusterrun v0.0.0-20261122005332-3a9bffda84ab\n", "commit  3a9bffda84abca1eb3cfecf9d1ea6208e4a9fbb6\n"},
			[]string{"v0.0.0-20261122005332-3a9bffda84ab"},
		},
		{
			build{Module: "github.com/clusterrun/clusterrun", Version: "v1.2.3", Go: "go1.26.8"},
			[]string{"clusterrun v1.2.3\n", "commit  unknown"},
			[]string{"v1.2.3"},
		},
	} {
		full, short := tc.b.String(), tc.b.short()
		for _, w := range tc.full {
			if !strings.Contains(full, w) {
				t.Errorf("%+v: String() lacks %q:\n%s", tc.b, w, full)
			}
		}
		if short != tc.short[0] {
			t.Errorf("%+v: short() = %q, want %q", tc.b, short, tc.short[0])
		}
	}
}
