package preflight

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/hashicorp/hcl/v2"
)

// fakeMachine is a host made of maps, for preflight tests that must not
// depend on the machine running them.
type fakeMachine struct {
	uid         int
	caps        uint64
	capsKnown   bool
	portStart   int
	portKnown   bool
	users       map[string]bool
	groups      map[string]bool
	dirs        map[string]bool // absolute path -> exists as a directory
	files       map[string]bool // absolute path -> executable (false: exists, mode 0644)
	userLookups int
}

func newFakeMachine() *fakeMachine {
	return &fakeMachine{
		uid: 1000, capsKnown: true, portStart: 1024, portKnown: true,
		users:  map[string]bool{"www-data": true},
		groups: map[string]bool{"www-data": true},
		dirs:   map[string]bool{"/srv": true, "/srv/app": true, "/usr/bin": true, "/opt/bin": true},
		files:  map[string]bool{"/usr/bin/node": true, "/opt/bin/mytool": true, "/srv/app/server": true, "/srv/app/data.txt": false},
	}
}

func (m *fakeMachine) host(environ ...string) *host {
	h := &host{
		environ:               func() []string { return environ },
		euid:                  func() int { return m.uid },
		capEff:                func() (uint64, bool) { return m.caps, m.capsKnown },
		unprivilegedPortStart: func() (int, bool) { return m.portStart, m.portKnown },
		lookupUser: func(name string) error {
			m.userLookups++
			if m.users[name] {
				return nil
			}
			return fs.ErrNotExist
		},
		lookupGroup: func(name string) error {
			if m.groups[name] {
				return nil
			}
			return fs.ErrNotExist
		},
		isDir: func(path string) error {
			switch {
			case m.dirs[path]:
				return nil
			case m.hasFile(path):
				return errNotDir
			}
			return fs.ErrNotExist
		},
		isExecutable: func(path string) error {
			exe, ok := m.files[path]
			switch {
			case m.dirs[path]:
				return proc.ErrIsDir
			case !ok:
				return fs.ErrNotExist
			case !exe:
				return proc.ErrNotExecutable
			}
			return nil
		},
	}
	return h
}

func (m *fakeMachine) hasFile(path string) bool {
	_, ok := m.files[path]
	return ok
}

// preflightErrors loads src as /srv/cluster.hcl, checks it on m, and
// returns the summaries of the errors (the file's own and the machine's),
// each with the text its subject points at.
func preflightErrors(t *testing.T, m *fakeMachine, src string) []string {
	t.Helper()
	cfg, _, diags := hclconfig.ParsePartial("/srv/cluster.hcl", []byte(src))
	if cfg != nil {
		diags = append(diags, check(cfg, m.host("HOME=/home/tester", "PATH=/usr/bin:relative::/nowhere"))...)
	}
	hclconfig.SortDiagnostics(diags)
	var got []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if d.Subject == nil {
			t.Fatalf("%s has no subject", d.Summary)
		}
		at := src[d.Subject.Start.Byte:d.Subject.End.Byte]
		got = append(got, d.Summary+" at "+at)
		t.Logf("%s: %s", d.Summary, d.Detail)
	}
	return got
}

func TestPreflightPorts(t *testing.T) {
	src := `
listener "low" { address = "127.0.0.1:80" }
listener "edge" { address = ":1024" }
listener "random" { address = ":0" }
metrics { address = "127.0.0.1:9" }
app "web" {
  command   = ["node"]
  listeners = ["low", "edge", "random"]
}
`
	const netBind = 1 << capNetBindService
	tests := []struct {
		name  string
		setup func(m *fakeMachine)
		want  int // errors: ports 80 and 9, or none
	}{
		{"unprivileged user", func(m *fakeMachine) {}, 2},
		{"root", func(m *fakeMachine) { m.uid = 0 }, 0},
		{"CAP_NET_BIND_SERVICE", func(m *fakeMachine) { m.caps = netBind }, 0},
		{"other capabilities only", func(m *fakeMachine) { m.caps = ^uint64(netBind) }, 2},
		{"capabilities unknown", func(m *fakeMachine) { m.capsKnown = false; m.caps = netBind }, 2},
		{"port start unknown", func(m *fakeMachine) { m.portKnown = false }, 0},
		{"every port unprivileged", func(m *fakeMachine) { m.portStart = 0 }, 0},
		{"port start lowered to 80", func(m *fakeMachine) { m.portStart = 80 }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMachine()
			tt.setup(m)
			got := preflightErrors(t, m, src)
			if len(got) != tt.want {
				t.Fatalf("errors %q, want %d", got, tt.want)
			}
			for _, g := range got {
				if !strings.HasPrefix(g, "Port needs privilege at ") || strings.Contains(g, "1024") {
					t.Errorf("unexpected error %q", g)
				}
			}
		})
	}
}

func TestPreflightAccounts(t *testing.T) {
	src := `
app "a" {
  command = ["node"]
  user    = "www-data"
  group   = "www-data"
}
app "b" {
  command = ["node"]
  user    = "www-data"
}
app "c" {
  command = ["node"]
  user    = "ghost"
  group   = "ghosts"
}
`
	const setid = 1<<capSetuid | 1<<capSetgid
	tests := []struct {
		name  string
		setup func(m *fakeMachine)
		want  []string
	}{
		{"root", func(m *fakeMachine) { m.uid = 0 }, []string{`Unknown user at "ghost"`, `Unknown group at "ghosts"`}},
		{"CAP_SETUID and CAP_SETGID", func(m *fakeMachine) { m.caps = setid }, []string{`Unknown user at "ghost"`, `Unknown group at "ghosts"`}},
		{"CAP_SETUID alone", func(m *fakeMachine) { m.caps = 1 << capSetuid }, []string{
			`Cannot switch user at "www-data"`, `Cannot switch group at "www-data"`, `Cannot switch user at "www-data"`,
			`Unknown user at "ghost"`, `Unknown group at "ghosts"`,
		}},
		{"unprivileged", func(m *fakeMachine) {}, []string{
			`Cannot switch user at "www-data"`, `Cannot switch group at "www-data"`, `Cannot switch user at "www-data"`,
			`Unknown user at "ghost"`, `Unknown group at "ghosts"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMachine()
			tt.setup(m)
			got := preflightErrors(t, m, src)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if m.userLookups != 2 {
				t.Errorf("%d user lookups, want 2 (one per name)", m.userLookups)
			}
		})
	}
}

func TestPreflightPrograms(t *testing.T) {
	src := `
app "onpath" { command = ["node", "x.js"] }
app "typo" { command = ["nodee"] }
app "ownpath" {
  command = ["mytool"]
  env     = { PATH = "/opt/bin" }
}
app "ownpath-miss" {
  command = ["node"]
  env     = { PATH = "/opt/bin" }
}
app "string" { command = "FOO=1 node x.js" }
app "string-typo" { command = "FOO=1 nodee x.js" }
app "string-setpath" { command = "PATH=/opt/bin:$PATH mytool2" }
app "string-complex" { command = "nodee | tee log" }
app "string-expand" { command = "$PROG x" }
app "abs" { command = ["/srv/app/server"] }
app "rel" {
  command = ["./server"]
  dir     = "app"
}
app "rel-missing" { command = ["./server"] }
app "not-exec" { command = ["/srv/app/data.txt"] }
app "dir" { command = ["/srv/app"] }
app "built" {
  command    = ["./bin/not-built-yet"]
  depends_on = ["onpath"]
}
app "built-but-not-on-path" {
  command    = ["nodee"]
  depends_on = ["onpath"]
}
app "missing-dir" {
  command = ["./nowhere"]
  dir     = "nope"
}
app "via-env" { command = "env RAILS_ENV=production nodee server.js" }
app "via-env-ok" { command = "env RAILS_ENV=production node server.js" }
`
	m := newFakeMachine()
	got := preflightErrors(t, m, src)
	want := []string{
		`Program not found at "nodee"`,
		`Program not found at "node"`,
		`Program not found at "FOO=1 nodee x.js"`,
		`Program not found at "./server"`,
		`Program not executable at "/srv/app/data.txt"`,
		`Program not executable at "/srv/app"`,
		`Program not found at "nodee"`,
		`Missing dir at "nope"`,
		`Program not found at "env RAILS_ENV=production nodee server.js"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPreflightMessages checks that the PATH message names the program and
// where it looked in a few words, without printing the PATH. A relative
// entry counts: the runner's exec looks there too, in the app's dir.
func TestPreflightMessages(t *testing.T) {
	cfg, _, diags := hclconfig.Parse("/srv/cluster.hcl", []byte(`app "x" { command = ["nodee"] }`))
	if cfg == nil {
		t.Fatalf("diags = %v", diags)
	}
	diags = check(cfg, newFakeMachine().host("PATH=/a:/b:/c:relative"))
	if len(diags) != 1 {
		t.Fatalf("diags = %v", diags)
	}
	want := `App "x" runs "nodee", which was not found in any of the 4 directories on the runner's PATH. Install it, give its full path, or set PATH in the app's env.`
	if diags[0].Detail != want {
		t.Errorf("detail = %q\nwant     %q", diags[0].Detail, want)
	}
}

// TestPreflightBesideFileErrors: a mistake in the file hides no mistake
// about the machine (check reports every one at once), and what did not
// decode is not checked: a dir that is wrong leaves its app's program
// alone, a user that is wrong is not looked up.
func TestPreflightBesideFileErrors(t *testing.T) {
	m := newFakeMachine()
	got := preflightErrors(t, m, `
app "a" {
  command   = ["nodee"]
  instances = 0
  comand    = "x"
}
app "b" {
  command = ["./server"]
  dir     = ["app"]
}
app "c" {
  command = ["node"]
  user    = ["ghost"]
}
listener "l" { address = "127.0.0.1:80" }
listener "l2" { address = "127.0.0.1:80" }
`)
	want := []string{
		`Program not found at "nodee"`,
		`Invalid instances at 0`,
		`Unsupported argument at comand`,
		`Incorrect value type at ["app"]`,
		`Incorrect value type at ["ghost"]`,
		`Port needs privilege at "127.0.0.1:80"`,
		`Duplicate listener address at "127.0.0.1:80"`,
		`Port needs privilege at "127.0.0.1:80"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPreflightProcfile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("PORT=443\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newFakeMachine()
	m.dirs[dir] = true
	src := "web: node server.js\nworker: nodee worker.js\nclock: while true; do date; sleep 1; done\n"
	cfg, _, diags := hclconfig.Parse(filepath.Join(dir, "Procfile"), []byte(src))
	if cfg == nil {
		t.Fatalf("diags = %v", diags)
	}
	diags = check(cfg, m.host("PATH=/usr/bin"))
	hclconfig.SortDiagnostics(diags)
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+" at "+src[d.Subject.Start.Byte:d.Subject.End.Byte])
	}
	want := []string{"Port needs privilege at web", "Program not found at nodee worker.js"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRealHost checks the parts of the real host that need no privilege.
func TestRealHost(t *testing.T) {
	h := realHost()
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"isDir(dir)", h.isDir(dir), nil},
		{"isDir(file)", h.isDir(exe), errNotDir},
		{"isDir(missing)", h.isDir(filepath.Join(dir, "nope")), fs.ErrNotExist},
		{"isExecutable(exe)", h.isExecutable(exe), nil},
		{"isExecutable(plain)", h.isExecutable(plain), proc.ErrNotExecutable},
		{"isExecutable(dir)", h.isExecutable(dir), proc.ErrIsDir},
		{"isExecutable(missing)", h.isExecutable(filepath.Join(dir, "nope")), fs.ErrNotExist},
	}
	for _, c := range checks {
		if (c.want == nil) != (c.err == nil) || c.want != nil && !errors.Is(c.err, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.err, c.want)
		}
	}
	if err := h.lookupUser("root"); err != nil {
		t.Errorf("lookupUser(root) = %v", err)
	}
	if err := h.lookupUser("0"); err != nil {
		t.Errorf("lookupUser(0) = %v; numeric ids are accepted", err)
	}
	if err := h.lookupUser("no-such-user-clusterrun"); err == nil {
		t.Errorf("lookupUser(no-such-user) succeeded")
	}
	if runtime.GOOS == "linux" {
		if _, ok := h.capEff(); !ok {
			t.Errorf("capEff unknown on Linux")
		}
		if n, ok := h.unprivilegedPortStart(); !ok || n < 0 || n > 65536 {
			t.Errorf("unprivilegedPortStart = %d, %v", n, ok)
		}
	}
}
