package configload

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
)

// TestMain lets the test binary be the config reader Load starts, as the
// clusterrun binary is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ChildArg {
		os.Exit(RunChild(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// hangBound tells a hang from a slow run on a busy machine: no test here
// asserts speed.
const hangBound = 60 * time.Second

// configs are the valid configs of the repository: the examples and
// hclconfig's valid test files.
func configs(t *testing.T) []string {
	t.Helper()
	var paths []string
	for _, pattern := range []string{"../examples/*/cluster.hcl", "../examples/*/Procfile", "../hclconfig/testdata/valid/*.hcl", "../hclconfig/testdata/procfile/valid/Procfile"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < 10 {
		t.Fatalf("found %d configs, want at least 10", len(paths))
	}
	return paths
}

func roundTrip(t *testing.T, cfg *hclconfig.Config) *hclconfig.Config {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(Result{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := gob.NewDecoder(&b).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res.Config
}

// The Config a child hands back is the Config the parser made, exactly:
// every field, every map, every range.
func TestRoundTrip(t *testing.T) {
	for _, p := range configs(t) {
		cfg, _, diags := hclconfig.Load(p)
		if cfg == nil {
			t.Fatalf("%s: %v", p, diags)
		}
		if got := roundTrip(t, cfg); !reflect.DeepEqual(got, cfg) {
			t.Errorf("%s: the config changed on its way:\n got %#v\nwant %#v", p, got, cfg)
		}
	}
	// Values no file above has: bytes that are not UTF-8 (an env file in
	// Latin-1), empty strings, negative and large numbers, every pointer.
	odd := &hclconfig.Config{
		Path: "/srv/\xff.hcl", Env: map[string]string{"LATIN1": "Z\xfcrich", "EMPTY": ""},
		Metrics: &hclconfig.Metrics{Address: "127.0.0.1:9102"},
		Apps: []*hclconfig.App{{
			Name: "a", Command: []string{"x", "", "\xfe"}, Env: map[string]string{},
			Watch:   &hclconfig.Watch{Paths: []string{"/srv"}},
			Restart: hclconfig.Restart{MaxMemory: 1 << 62, Backoff: -1},
			Stop:    hclconfig.Stop{Signal: syscall.SIGKILL},
			At:      hclconfig.AppRanges{Dir: &hcl.Range{Filename: "x", Start: hcl.Pos{Line: 1, Column: 2, Byte: 3}}, DirUnknown: true},
			Written: hclconfig.Written{Env: []hclconfig.WrittenVar{{Name: "A", Refs: []string{"B"}, Literal: true}}},
		}},
	}
	if got := roundTrip(t, odd); !reflect.DeepEqual(got, odd) {
		t.Errorf("the config changed on its way:\n got %#v\nwant %#v", got, odd)
	}
}

// Load in the child gives what Load in this process gives.
func TestLoadMatchesInProcess(t *testing.T) {
	for _, p := range configs(t) {
		want, _, _ := hclconfig.Load(p)
		res, err := Load(p, Options{SkipMachine: true})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if res.Errors != 0 || !reflect.DeepEqual(res.Config, want) {
			t.Errorf("%s: %d errors, %s; config differs from the in-process one", p, res.Errors, res.Diagnostics)
		}
	}
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Mistakes come back rendered and counted, the machine's among them, and
// in order: every one at once.
func TestLoadReportsEveryMistake(t *testing.T) {
	p := write(t, "cluster.hcl", `
app "a" {
  command = ["no-such-program-clusterrun"]
  comand  = "x"
}
listener "l" { address = "127.0.0.1:8080" }
listener "m" { address = "127.0.0.1:8080" }
`)
	res, err := Load(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Config != nil || res.Errors != 3 {
		t.Fatalf("config %v, %d errors; want none and 3:\n%s", res.Config != nil, res.Errors, res.Diagnostics)
	}
	order := []string{"Program not found", "Unsupported argument", "Duplicate listener address"}
	at := 0
	for _, s := range order {
		i := strings.Index(res.Diagnostics[at:], "Error: "+s)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", s, res.Diagnostics)
		}
		at += i
	}
	// Without the machine's checks, the program is not looked up.
	if res, _ := Load(p, Options{SkipMachine: true}); res.Errors != 2 {
		t.Errorf("with SkipMachine: %d errors, want 2:\n%s", res.Errors, res.Diagnostics)
	}
	// ErrorsOnly leaves warnings out, but counts them.
	w := write(t, "cluster.hcl", "listener \"unused\" { address = \"127.0.0.1:0\" }\napp \"a\" { command = [\"true\"] }\n")
	if res, err := Load(w, Options{ErrorsOnly: true}); err != nil || res.Config == nil || res.Warnings != 1 || res.Diagnostics != "" {
		t.Errorf("errors only: %+v, %v", res, err)
	}
}

// The hostile inputs are refused as before: with a position where a
// limit says where (size, nesting, a number too large), or with a clear
// word about the child that a limit stopped. None of them hangs or
// reaches the caller's memory.
func TestLoadHostile(t *testing.T) {
	// 100 KB: the most an environment variable can be is 128 KiB (execve's
	// MAX_ARG_STRLEN), so the runner's own cannot be larger.
	t.Setenv("CLUSTERRUN_TEST_BIG", strings.Repeat("x", 100_000))
	deep := "app \"a\" {\n  command = [\"x\"]\n  env = { X = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + " }\n}\n"
	var manyErrors strings.Builder
	manyErrors.WriteString("app \"a\" {\n  command = [\"x\"]\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&manyErrors, "  u%d = 1\n", i)
	}
	manyErrors.WriteString("}\n")
	wide := "app \"a\" {\n  command = [\"x\"]\n  env = { X = format(\"" + strings.Repeat("%0999999d", 2000) + "\"" + strings.Repeat(", 1", 2000) + ") }\n}\n"
	repeated := "app \"a\" {\n  command = [\"x\"]\n  env = { X = \"" + strings.Repeat("${env.CLUSTERRUN_TEST_BIG}", 10_000) + "\" }\n}\n"
	replaced := "app \"a\" {\n  command = [\"x\"]\n  env = { X = replace(env.CLUSTERRUN_TEST_BIG, \"\", env.CLUSTERRUN_TEST_BIG) }\n}\n"
	ops := "app \"a\" {\n  command = [\"x\"]\n  env = { X = " + strings.Repeat("1 + ", 100_000) + "1 }\n}\n"
	tests := []struct {
		name, text string
		diag       string // a positioned error in the Result
		err        string // or an error about the child
	}{
		{"100,000-deep nesting", deep, "Nesting too deep", ""},
		{"100,000 operators in a row", ops, "Nesting too deep", ""},
		{"5,000 errors", manyErrors.String(), "… and 4,980 more errors", ""},
		{"a file over 1 MiB", "# " + strings.Repeat("x", 1<<20) + "\n", "File too large", ""},
		{"a number with a huge exponent", "env = { X = 1e99999999 }\napp \"a\" { command = [\"x\"] }\n", "Number too large", ""},
		{"format() of many wide fields", wide, "", "memory"},
		{"a long value repeated", repeated, "", "memory"},
		{"replace() of every position", replaced, "", "memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "cluster.hcl", tc.text)
			start := time.Now()
			res, err := Load(p, Options{SkipMachine: true, Limits: Limits{Memory: 512 << 20}})
			t.Logf("%v; %d errors; %v", time.Since(start).Round(time.Millisecond), res.Errors, err)
			if time.Since(start) > hangBound {
				t.Errorf("took %v: a hang", time.Since(start))
			}
			switch {
			case tc.diag != "" && (err != nil || res.Config != nil || !strings.Contains(res.Diagnostics, tc.diag)):
				t.Errorf("want %q in the diagnostics; got %v:\n%.2000s", tc.diag, err, res.Diagnostics)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("want an error saying %q; got %v, %d errors", tc.err, err, res.Errors)
			case err != nil && !strings.HasPrefix(err.Error(), "cannot read "+p+": "):
				t.Errorf("the error does not say which file: %v", err)
			}
		})
	}
}

// An env file that is a pipe nobody writes blocks the reader: the wait
// limit stops it and says why.
func TestLoadBlockedIsStopped(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "blocked.env"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(p, []byte("env_file = [\"blocked.env\"]\napp \"a\" { command = [\"x\"] }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, Options{SkipMachine: true, Limits: Limits{Wait: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "took longer than 1s") {
		t.Errorf("Load = %v; want it stopped after 1s", err)
	}
}

// The child's CPU limit ends a reader that computes too long, and the
// error says so. (A number of a huge exponent, as a string, written out
// digit by digit: the literal limit does not see a string.)
func TestLoadCPUIsLimited(t *testing.T) {
	p := write(t, "cluster.hcl", "env = { X = tonumber(\"1e99999999\") }\napp \"a\" { command = [\"x\"] }\n")
	_, err := Load(p, Options{SkipMachine: true, Limits: Limits{CPU: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "CPU time") {
		t.Errorf("Load = %v; want the CPU limit", err)
	}
}

// The child starts with nothing of the parent's open but stdin, stdout
// and stderr, even a descriptor the parent did not mark close-on-exec
// (a listening socket inherited from systemd, say).
func TestChildInheritsNoDescriptor(t *testing.T) {
	leak := write(t, "leak.env", "LEAKED=1\n")
	f, err := os.Open(leak)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// dup2 leaves the new descriptor without close-on-exec; 100 is far
	// above any the child opens itself.
	const fd = 100
	if err := syscall.Dup2(int(f.Fd()), fd); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	p := write(t, "cluster.hcl", fmt.Sprintf("env_file = [\"/proc/self/fd/%d\"]\napp \"a\" { command = [\"x\"] }\n", fd))
	res, err := Load(p, Options{SkipMachine: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 || !strings.Contains(res.Diagnostics, "Env file not found") {
		t.Errorf("the child could read the parent's descriptor %d: %d errors, config %v\n%s", fd, res.Errors, res.Config != nil, res.Diagnostics)
	}
	// The same file by its name is read: the test can tell.
	q := write(t, "cluster.hcl", fmt.Sprintf("env_file = [%q]\napp \"a\" { command = [\"x\"] }\n", leak))
	if res, err := Load(q, Options{SkipMachine: true}); err != nil || res.Config == nil || res.Config.Env["LEAKED"] != "1" {
		t.Errorf("the env file by its name: %+v, %v", res, err)
	}
}
