package initconfig

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// testPath puts stubs of the programs the testdata runs at the end of
// PATH, so that the written files pass preflight on a machine without
// them, and fixes PORT, which a Procfile's base depends on.
func testPath(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	for _, prog := range []string{"node", "python3"} {
		if err := os.WriteFile(filepath.Join(bin, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", os.Getenv("PATH")+string(filepath.ListSeparator)+bin)
	t.Setenv("PORT", "")
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGolden converts each input, compares the file and the unmapped list
// with testdata/NAME.golden, and loads the file as clusterrun check does,
// as if written beside its input.
func TestGolden(t *testing.T) {
	testPath(t)
	node := true
	if _, err := exec.LookPath("node"); err != nil {
		node = false
	}
	for _, tc := range []struct {
		name, input string
		needsNode   bool
	}{
		{"template", "", false},
		{"procfile", "testdata/procfile/Procfile", false},
		{"pm2-json", "testdata/pm2/ecosystem.json", false},
		{"pm2-array", "testdata/pm2/array.json", false},
		{"pm2-js", "testdata/pm2/ecosystem.config.js", true},
		{"pm2-esm", "testdata/pm2/ecosystem.config.mjs", true},
		{"pm2-js-like", "testdata/pm2/http/ecosystem.json", false},
		{"pm2-one-app", "testdata/pm2/http/one-app.json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needsNode && !node {
				t.Skip("node is not on PATH: a .js ecosystem file cannot be read")
			}
			var res Result
			out := abs(t, "testdata/cluster.hcl")
			if tc.input != "" {
				out = filepath.Join(abs(t, filepath.Dir(tc.input)), "cluster.hcl")
				src := Source{Name: filepath.Base(tc.input), Dir: abs(t, filepath.Dir(tc.input)), OutDir: filepath.Dir(out), CPUs: 4}
				if strings.HasPrefix(filepath.Base(tc.input), "Procfile") {
					data, err := os.ReadFile(tc.input)
					if err != nil {
						t.Fatal(err)
					}
					if res, err = FromProcfile(src, data); err != nil {
						t.Fatal(err)
					}
				} else {
					apps, err := ReadEcosystem(tc.input)
					if err != nil {
						t.Fatal(err)
					}
					res = FromEcosystem(src, apps)
				}
			} else {
				res = Template()
			}

			var b bytes.Buffer
			b.Write(res.File)
			b.WriteString("\n# stderr:\n")
			for _, u := range res.Unmapped {
				b.WriteString("# not converted: " + u + "\n")
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil {
				t.Fatalf("%v (go test ./initconfig -update writes it)", err)
			} else if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs (go test ./initconfig -update rewrites it):\n%s", golden, b.String())
			}

			// What clusterrun check says of the file.
			cfg, files, diags := hclconfig.Parse(out, res.File)
			if diags.HasErrors() {
				var d strings.Builder
				hclconfig.WriteDiagnostics(&d, files, diags, 0, false)
				t.Fatalf("the written file does not pass check:\n%s\n%s", d.String(), res.File)
			}
			if len(cfg.Apps) != res.Apps {
				t.Errorf("Result.Apps = %d, the file has %d", res.Apps, len(cfg.Apps))
			}
		})
	}
}

func TestProcfileMeaning(t *testing.T) {
	testPath(t)
	dir := abs(t, "testdata/procfile")
	data, err := os.ReadFile("testdata/procfile/Procfile")
	if err != nil {
		t.Fatal(err)
	}
	res, err := FromProcfile(Source{Name: "Procfile", Dir: dir, OutDir: dir}, data)
	if err != nil {
		t.Fatal(err)
	}
	// The converted file means what clusterrun makes of the Procfile.
	conv, _, diags := hclconfig.Parse(filepath.Join(dir, "cluster.hcl"), res.File)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	orig, _, diags := hclconfig.Load("testdata/procfile/Procfile")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(conv.Apps) != len(orig.Apps) {
		t.Fatalf("%d apps, the Procfile has %d", len(conv.Apps), len(orig.Apps))
	}
	for i, a := range conv.Apps {
		o := orig.Apps[i]
		port := a.Env["PORT"]
		if o.Port != 0 && port != strconv.Itoa(o.Port) {
			t.Errorf("%s: PORT %q, the Procfile gives %d", a.Name, port, o.Port)
		}
		if a.Name != o.Name || !reflect.DeepEqual(a.Command, o.Command) || !reflect.DeepEqual(a.Listeners, o.Listeners) ||
			a.Ready.Check != o.Ready.Check || a.Reload != o.Reload || a.Instances != o.Instances || a.Env["GREETING"] != o.Env["GREETING"] {
			t.Errorf("app %d: converted %+v\nProcfile %+v", i, a, o)
		}
	}
	if !reflect.DeepEqual(conv.Listeners[0].Address, orig.Listeners[0].Address) || conv.Listeners[0].Mode != orig.Listeners[0].Mode {
		t.Errorf("listener %+v, the Procfile's %+v", conv.Listeners[0], orig.Listeners[0])
	}
}

func TestProcfileErrors(t *testing.T) {
	src := Source{Name: "Procfile", Dir: t.TempDir()}
	src.OutDir = src.Dir
	for _, tc := range []struct{ in, want string }{
		{"web bundle exec puma\n", `Procfile:1: this line has no ":"`},
		{"# only a comment\n\n", "defines no process"},
		{"web: a\nweb: b\n", `Procfile:2: process "web" is already defined on line 1`},
		{"we.b: a\n", `the process name "we.b" cannot be an app name`},
		{"web:\n", `process "web" has no command`},
	} {
		if _, err := FromProcfile(src, []byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromProcfile(%q) error = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestEcosystemErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ file, text, want string }{
		{"a.json", "{", "line 1, column 2: an object is not closed"},
		{"b.json", `"x"`, "it has no apps"},
		{"c.json", `{"apps": []}`, "its apps list is empty"},
		{"d.json", `{"apps": [1]}`, "app 1 is not an object"},
		{"e.yml", "apps: []", "ends in .js, .cjs, .mjs or .json"},
	} {
		p := write(tc.file, tc.text)
		if _, err := ReadEcosystem(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadEcosystem(%s) error = %v, want %q", tc.file, err, tc.want)
		}
	}
	if _, err := ReadEcosystem(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}

	// Without node, a .js file is refused with the way out.
	js := write("eco.config.js", "module.exports = {apps: []}")
	t.Setenv("PATH", t.TempDir())
	if _, err := ReadEcosystem(js); err == nil || !strings.Contains(err.Error(), "node is not on PATH") || !strings.Contains(err.Error(), "--from ecosystem.json") {
		t.Errorf("without node: %v", err)
	}
}

func TestEcosystemJSThatThrows(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH")
	}
	p := filepath.Join(t.TempDir(), "ecosystem.config.js")
	if err := os.WriteFile(p, []byte(`throw new Error("no config here")`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEcosystem(p); err == nil || !strings.Contains(err.Error(), "no config here") {
		t.Errorf("error = %v, want node's message", err)
	}
}

// TestQuote checks that every string comes back from HCL as it went in:
// quotes, backslashes, control characters and template sequences.
func TestQuote(t *testing.T) {
	for _, s := range []string{"", "plain", `a "quoted" \ back`, "tab\tnew\nline\r", "${env.HOME} %{if x} $$ %% $ %", "\x01\x1f", "ünï©ødé", "$${x}"} {
		expr, diags := hclsyntax.ParseExpression([]byte(quote(s)), "", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("quote(%q) = %s: %v", s, quote(s), diags)
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || v.AsString() != s {
			t.Errorf("quote(%q) = %s reads back as %q (%v)", s, quote(s), v.AsString(), diags)
		}
	}
}

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b ", []string{"a", "b"}},
		{`--name 'high prio' "x y" z\ w`, []string{"--name", "high prio", "x y", "z w"}},
		{`'' ""`, []string{"", ""}},
		{`'it\s'`, []string{`it\s`}},
	} {
		if got := splitWords(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMemorySize(t *testing.T) {
	for in, want := range map[string]string{"300M": "300MiB", "1G": "1GiB", "512K": "512KiB", "1048576": "1048576", "1.5G": "1.5GiB", "200MB": "200MiB", "x": ""} {
		got, ok := memorySize(in)
		if got != want || ok != (want != "") {
			t.Errorf("memorySize(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestAppName(t *testing.T) {
	for in, want := range map[string]string{"api": "api", "worker.py": "worker-py", "_x": "x", "...": "app", "a b": "a-b"} {
		if got := appName(in); got != want {
			t.Errorf("appName(%q) = %q, want %q", in, got, want)
		}
	}
}
