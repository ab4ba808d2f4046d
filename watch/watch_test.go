package watch

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests use real files and the real clock, so none of them runs in
// parallel: the goroutine check in TestCloseStopsCallbacks must see only
// its own watcher. The timing rules themselves are tested on the
// debouncer with synthetic times (debounce_test.go).

const testDebounce = 150 * time.Millisecond

// waitFor bounds a wait for something that must happen; it is generous
// because the machine is shared and tests run under -race.
const waitFor = 10 * time.Second

type call struct{ app, path string }

func start(t *testing.T, specs []Spec) (*Watcher, <-chan call) {
	t.Helper()
	calls := make(chan call, 100)
	w, err := New(specs, Options{
		Debounce: testDebounce,
		Reload:   func(app, path string) { calls <- call{app, path} },
		Logf:     t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w, calls
}

func next(t *testing.T, calls <-chan call) call {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(waitFor):
		t.Fatal("no Reload call")
		return call{}
	}
}

// expect waits for the next call and checks it. Callbacks come in order
// on one goroutine, so "the next call names the marker" proves that the
// changes before the marker caused no call of their own: that is how
// these tests show that something did not trigger, without sleeping.
func expect(t *testing.T, calls <-chan call, app, path string) {
	t.Helper()
	if c := next(t, calls); c.app != app || c.path != path {
		t.Fatalf("Reload(%q, %q), want Reload(%q, %q)", c.app, c.path, app, path)
	}
}

func write(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(path), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestBurstIsOneReload(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "sub", "deep"))
	_, calls := start(t, []Spec{{App: "web", Paths: []string{dir}}})

	first := filepath.Join(dir, "a.go")
	write(t, first)
	for i := range 20 {
		write(t, filepath.Join(dir, "sub", "deep", fmt.Sprintf("f%d.go", i)))
		write(t, first)
	}
	expect(t, calls, "web", first)

	// A second burst (as if during the reload the first one started) is
	// a second call.
	marker := filepath.Join(dir, "sub", "marker.go")
	write(t, marker)
	expect(t, calls, "web", marker)
}

func TestIgnore(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "node_modules", "pkg"))
	mkdir(t, filepath.Join(dir, "src", "node_modules"))
	mkdir(t, filepath.Join(dir, "build"))
	mkdir(t, filepath.Join(dir, "src", "build"))
	_, calls := start(t, []Spec{{
		App:    "web",
		Paths:  []string{dir},
		Ignore: []string{"**/*.log", "node_modules", "*.tmp", "/build"},
	}})

	for _, p := range []string{
		"node_modules/pkg/index.js",
		"src/node_modules/x.js",
		"app.log",
		"src/deep.log",
		"src/a.tmp",
		"build/out.js",
	} {
		write(t, filepath.Join(dir, p))
	}
	// A new directory that is ignored, and files in it.
	mkdir(t, filepath.Join(dir, "src", "lib", "node_modules", "dep"))
	write(t, filepath.Join(dir, "src", "lib", "node_modules", "dep", "x.js"))
	expect(t, calls, "web", filepath.Join(dir, "src", "lib")) // the new lib directory itself

	// "/build" is anchored at the root: src/build is not ignored.
	marker := filepath.Join(dir, "src", "build", "kept.js")
	write(t, marker)
	expect(t, calls, "web", marker)
}

func TestEnvFileReplacedByRename(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	local := filepath.Join(dir, ".env.local") // optional, missing at start
	write(t, env)
	_, calls := start(t, []Spec{{App: "api", EnvFiles: []string{env, local}}})

	// Another file in the env file's directory is not watched.
	write(t, filepath.Join(dir, "notes.txt"))
	// The way editors save: a new file renamed over the old one.
	tmp := filepath.Join(dir, ".env.swp")
	write(t, tmp)
	if err := os.Rename(tmp, env); err != nil {
		t.Fatal(err)
	}
	expect(t, calls, "api", env)

	// The optional env file appears.
	write(t, local)
	expect(t, calls, "api", local)

	// The watch on .env survived the rename: edit it in place.
	write(t, env)
	expect(t, calls, "api", env)
}

func TestNewSubdirectoryIsWatched(t *testing.T) {
	dir := t.TempDir()
	_, calls := start(t, []Spec{{App: "web", Paths: []string{dir}}})

	sub := filepath.Join(dir, "new")
	mkdir(t, sub)
	expect(t, calls, "web", sub)
	f := filepath.Join(sub, "f.go")
	write(t, f)
	expect(t, calls, "web", f)

	// Several levels at once: the deeper ones may exist before the watch
	// on the first is added, so they are found by walking it.
	nested := filepath.Join(dir, "a")
	mkdir(t, filepath.Join(nested, "b", "c"))
	expect(t, calls, "web", nested)
	f = filepath.Join(nested, "b", "c", "f.go")
	write(t, f)
	expect(t, calls, "web", f)

	// A renamed directory is watched under its new name.
	renamed := filepath.Join(dir, "z")
	if err := os.Rename(nested, renamed); err != nil {
		t.Fatal(err)
	}
	expect(t, calls, "web", nested)
	f = filepath.Join(renamed, "b", "c", "g.go")
	write(t, f)
	expect(t, calls, "web", f)
}

// TestRootRemovedAndMadeAgain: "rm -rf dist && mkdir dist", the way
// builds start, used to end the watch for good (issue 13). The new
// directory is watched, and the change itself reloads.
func TestRootRemovedAndMadeAgain(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "dist")
	mkdir(t, filepath.Join(root, "sub"))
	write(t, filepath.Join(dir, "sibling"))
	_, calls := start(t, []Spec{{App: "web", Paths: []string{root}}})
	for round := 0; round < 2; round++ {
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		mkdir(t, root)
		// The removal and the new directory are one burst: one reload.
		if c := next(t, calls); c.app != "web" || !strings.HasPrefix(c.path, root) {
			t.Fatalf("Reload(%q, %q), want one for web under %s", c.app, c.path, root)
		}
		// A change in the parent beside the tree is none of the app's.
		write(t, filepath.Join(dir, "sibling"))
		mkdir(t, filepath.Join(root, "assets"))
		write(t, filepath.Join(root, "assets", "app.js"))
		c := next(t, calls)
		if c.path == root {
			// The removal and the new directory came as two bursts on a
			// busy machine: this is the second.
			c = next(t, calls)
		}
		if c.app != "web" || c.path != filepath.Join(root, "assets") {
			t.Fatalf("Reload(%q, %q), want Reload(%q, %q)", c.app, c.path, "web", filepath.Join(root, "assets"))
		}
		write(t, filepath.Join(root, "assets", "app.js"))
		expect(t, calls, "web", filepath.Join(root, "assets", "app.js"))
	}
}

func TestAppsAreIndependent(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	_, calls := start(t, []Spec{
		{App: "a", Paths: []string{a}},
		{App: "b", Paths: []string{b}},
	})
	fa, fb := filepath.Join(a, "x"), filepath.Join(b, "y")
	write(t, fa)
	write(t, fb)
	got := map[call]bool{next(t, calls): true, next(t, calls): true}
	if !got[call{"a", fa}] || !got[call{"b", fb}] {
		t.Fatalf("calls %v, want one for each app", got)
	}
}

func TestWatchPathIsFile(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	write(t, main)
	_, calls := start(t, []Spec{{App: "web", Paths: []string{main}}})
	write(t, filepath.Join(dir, "other.go"))
	write(t, main)
	expect(t, calls, "web", main)
}

func TestSymlinks(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	// The watch path is a link: the tree behind it is watched and changes
	// are named under the link.
	_, calls := start(t, []Spec{{App: "web", Paths: []string{link}}})

	// A link inside the tree is not followed out of it.
	write(t, filepath.Join(outside, "secret.go"))
	write(t, filepath.Join(dir, "main.go"))
	expect(t, calls, "web", filepath.Join(link, "main.go"))
}

func TestManyDirectories(t *testing.T) {
	dir := t.TempDir()
	var last string
	for i := range 40 {
		for j := range 50 {
			last = filepath.Join(dir, fmt.Sprintf("d%02d", i), fmt.Sprintf("e%02d", j))
			mkdir(t, last)
		}
	}
	_, calls := start(t, []Spec{{App: "web", Paths: []string{dir}}})
	f := filepath.Join(last, "f.go")
	write(t, f)
	expect(t, calls, "web", f)
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	reload := func(string, string) {}
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"missing path", []Spec{{App: "web", Paths: []string{missing}}}, "cannot watch " + missing + ` for app "web": no such file`},
		{"relative path", []Spec{{App: "web", Paths: []string{"src"}}}, `cannot watch src for app "web": not an absolute path`},
		{"relative env file", []Spec{{App: "web", EnvFiles: []string{".env"}}}, "not an absolute path"},
		{"bad glob", []Spec{{App: "web", Paths: []string{dir}, Ignore: []string{"[x"}}}, `"[x"`},
		{"no app", []Spec{{Paths: []string{dir}}}, "no app name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(tc.specs, Options{Reload: reload})
			if err == nil {
				w.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("no error without Reload")
	}
}

func TestExplainLimits(t *testing.T) {
	err := explain("web", "/src/big", syscall.ENOSPC)
	if s := err.Error(); !strings.Contains(s, "/src/big") || !strings.Contains(s, "max_user_watches") {
		t.Errorf("ENOSPC: %q", s)
	}
	err = explain("web", "/src/big", &fs.PathError{Op: "open", Path: "/src/big", Err: syscall.EMFILE})
	if s := err.Error(); !strings.Contains(s, "/src/big") || !strings.Contains(s, "too many open files") ||
		!strings.Contains(s, "ulimit -n") {
		t.Errorf("EMFILE: %q", s)
	}
	if err := explainStart(syscall.EMFILE); !strings.Contains(err.Error(), "max_user_instances") {
		t.Errorf("start EMFILE: %q", err)
	}
}

func TestCloseStopsCallbacks(t *testing.T) {
	dir := t.TempDir()
	var closed atomic.Bool
	calls := make(chan call, 1000)
	w, err := New([]Spec{{App: "web", Paths: []string{dir}}}, Options{
		Debounce: time.Millisecond, // many calls, to race with Close
		Reload: func(app, path string) {
			if closed.Load() {
				t.Errorf("Reload(%q, %q) after Close returned", app, path)
			}
			select {
			case calls <- call{app, path}:
			default: // the test reads only the first; never block the watcher
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "f")
	write(t, f)
	next(t, calls) // running

	stop := make(chan struct{})
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = os.WriteFile(f, []byte{byte(i)}, 0o644)
		}
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	close(stop)
	<-writer
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Close waits for the watcher's goroutine and fsnotify's reader, so
	// none may be left: no polling needed.
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "fsnotify") || strings.Contains(g, "watch.(*Watcher)") {
			t.Errorf("goroutine left after Close:\n%s", g)
		}
	}
}
