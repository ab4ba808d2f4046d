package initconfig

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed: CI installs it")
		}
		t.Skip("node is not on PATH")
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEcosystemJSBounds: a .js file is a program. Its stdout is not the
// config (the loader writes that on fd 3), so printing does not break it
// and is kept bounded; a file that never finishes, or leaves a child
// holding its output open, is stopped with its whole process group at the
// time bound, and the message says so (issue 13).
func TestEcosystemJSBounds(t *testing.T) {
	needNode(t)
	dir := t.TempDir()
	const app = `module.exports = { apps: [{ name: "web", script: "server.js" }] };`

	t.Run("prints", func(t *testing.T) {
		// 64 MiB on stdout, and some on stderr, then the config.
		p := writeFile(t, dir, "prints.config.js", `const chunk = "x".repeat(1 << 20);
for (let i = 0; i < 64; i++) process.stdout.write(chunk);
console.log("not JSON"); console.error("a warning");
`+app)
		eco, err := ReadEcosystem(p)
		if err != nil || len(eco.Apps) != 1 || eco.Apps[0]["name"] != "web" {
			t.Fatalf("ReadEcosystem = %+v, %v; want the one app", eco, err)
		}
	})

	t.Run("never finishes", func(t *testing.T) {
		defer func(d time.Duration) { nodeTimeout = d }(nodeTimeout)
		// Long enough for node to start and spawn its child on a busy
		// machine; the bound under test is what happens after.
		nodeTimeout = 5 * time.Second
		pidFile := filepath.Join(dir, "child.pid")
		// A child that inherits stdout and outlives node, and node itself
		// kept alive by a timer.
		p := writeFile(t, dir, "hangs.config.js", `const cp = require("child_process");
cp.execSync("echo $$ > "+`+strconv.Quote(pidFile)+`+"; exec sleep 1000", { stdio: "inherit" });
`+app)
		_, err := ReadEcosystem(p)
		if err == nil || !strings.Contains(err.Error(), "did not finish loading it within 5s") {
			t.Fatalf("error %v, want one saying it did not finish within the bound", err)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Skipf("node had not started its child within the bound (a very busy machine): %v", err)
		}
		pid, _ := strconv.Atoi(string(b))
		waitGone(t, pid)
	})

	t.Run("child keeps stdout open", func(t *testing.T) {
		pidFile := filepath.Join(dir, "child2.pid")
		// node finishes, but its child holds stdout: the config is read
		// all the same, and the child is stopped with the group.
		p := writeFile(t, dir, "child.config.js", `const cp = require("child_process");
const c = cp.spawn("sleep", ["1000"], { stdio: "inherit", detached: false });
require("fs").writeFileSync(`+strconv.Quote(pidFile)+`, String(c.pid));
`+app)
		eco, err := ReadEcosystem(p)
		if err != nil || len(eco.Apps) != 1 {
			t.Fatalf("ReadEcosystem = %+v, %v", eco, err)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(string(b))
		waitGone(t, pid)
	})

	t.Run("too big", func(t *testing.T) {
		p := writeFile(t, dir, "big.config.js", `module.exports = { apps: [{ name: "web", script: "x".repeat(2 << 20) }] };`)
		if _, err := ReadEcosystem(p); err == nil || !strings.Contains(err.Error(), "over 1024 KiB") {
			t.Fatalf("error %v, want one about the size", err)
		}
	})

	t.Run("exports nothing", func(t *testing.T) {
		p := writeFile(t, dir, "exits.config.js", `process.exit(0);`)
		if _, err := ReadEcosystem(p); err == nil || !strings.Contains(err.Error(), "exported nothing") {
			t.Fatalf("error %v, want one saying it exported nothing", err)
		}
	})

	t.Run("not JSON on fd 3", func(t *testing.T) {
		p := writeFile(t, dir, "fd3.config.js", `require("fs").writeSync(3, "{not json"); process.exit(0);`)
		if _, err := ReadEcosystem(p); err == nil || !strings.Contains(err.Error(), "what node wrote for it is not JSON") {
			t.Fatalf("error %v, want one saying what node wrote is not JSON", err)
		}
	})
}

// waitGone waits until pid has exited (or is a zombie nobody reaped yet).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the child %d of the ecosystem file is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEcosystemJSONBounds: a .json file over 1 MiB is refused before it
// is parsed (issue 13: 40 MB took 2.7 GB).
func TestEcosystemJSONBounds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "huge.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"apps": [{"script": "x", "env": {"A": "`)
	f.Write([]byte(strings.Repeat("y", 40<<20)))
	f.WriteString(`"}}]}`)
	f.Close()
	if _, err := ReadEcosystem(p); err == nil || !strings.Contains(err.Error(), "over 1024 KiB") {
		t.Fatalf("error %v, want one about the size", err)
	}
}

// TestEcosystemJSONIsJavaScript: pm2 evaluates a .json file as a
// JavaScript expression, so what JavaScript allows in data loads, and what
// computes is refused with its line and column (issue 17).
func TestEcosystemJSONIsJavaScript(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`// comment
{ apps: [ { name: 'a', script: "a.js", instances: +2, port: 0x1F90, env: { A: 'it\'s', B: "\u00e9\x41", C: .5, }, }, ], /* end */ }`, ""},
		{`[{"script": "a.js",}]`, ""},
		{"{apps: [{script: 'a.js', env: {A: require('os').hostname()}}]}", "line 1, column 35: \"require\" is a JavaScript expression"},
		{"{\n  apps: [\n    {script: `a.js`}\n  ]\n}", "line 3, column 14: unexpected"},
		{`{"apps": [{"script": "a.js"}]`, "an object is not closed"},
		{`{"apps": [{"script": "a.js"}]} x`, "unexpected \"x\" after the value"},
		{`{"apps": [{"script": "a.js"}]} /* open`, "comment is not closed"},
		{`{apps: [,]}`, "a hole"},
	} {
		v, err := parseJSObject([]byte(tc.text))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.text, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, %v; want an error with %q", tc.text, v, err, tc.want)
		}
	}
	v, err := parseJSObject([]byte(`{ apps: [ { name: 'a', script: "a.js", instances: +2, port: 0x1F90, env: { A: 'it\'s', B: "\u00e9\x41", C: .5, D: "\ud83d\ude00" }, }, ], }`))
	if err != nil {
		t.Fatal(err)
	}
	app := v.(map[string]any)["apps"].([]any)[0].(map[string]any)
	env := app["env"].(map[string]any)
	if app["instances"].(interface{ String() string }).String() != "2" || app["port"].(interface{ String() string }).String() != "8080" ||
		env["A"] != "it's" || env["B"] != "éA" || env["D"] != "😀" || env["C"].(interface{ String() string }).String() != "0.5" {
		t.Errorf("read as %v", app)
	}
}

// TestEcosystemShapes: where pm2 finds the apps (lib/API.js): "apps",
// else "pm2", else the file; an object where a list is expected is a list
// of one. The other top-level keys are listed as not converted.
func TestEcosystemShapes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		text  string
		apps  int
		other string
	}{
		{`{"apps": {"script": "a.js"}}`, 1, ""},
		{`{"pm2": [{"script": "a.js"}, {"script": "b.js"}], "deploy": {}}`, 2, "deploy"},
		{`{"script": "a.js"}`, 1, ""},
		{`[{"script": "a.js"}]`, 1, ""},
		{`{"apps": [{"script": "a.js"}], "static": [], "deploy": {}}`, 1, "deploy static"},
	} {
		p := writeFile(t, dir, "e.json", tc.text)
		eco, err := ReadEcosystem(p)
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		if len(eco.Apps) != tc.apps || strings.Join(sortedKeys(eco.Other), " ") != tc.other {
			t.Errorf("%s: %d apps, other %v", tc.text, len(eco.Apps), sortedKeys(eco.Other))
		}
	}
}

// FuzzParseJSObject: the reader of .json ecosystem files never panics, and
// reads every JSON text as encoding/json does (JSON is a subset of the
// JavaScript literals pm2 evaluates).
func FuzzParseJSObject(f *testing.F) {
	for _, s := range []string{`{"apps": [{"script": "a.js", "instances": 4}]}`, `// c
{apps: [{script: 'a.js', env: {A: "\u00e9", B: 0x10,},},],}`, `[1, -2.5e3, true, null, "\ud83d\ude00"]`, `{"a": {"b": [[[]]]}}`, `'\x41\
b'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, err := parseJSObject([]byte(text))
		if !json.Valid([]byte(text)) {
			return
		}
		want, werr := decodeJSON([]byte(text))
		if werr != nil {
			return // valid JSON beyond encoding/json's depth limit
		}
		if err != nil {
			t.Fatalf("%q is JSON, but: %v", text, err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("%q reads as %#v, encoding/json reads %#v", text, v, want)
		}
	})
}
