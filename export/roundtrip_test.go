package export

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/initconfig"
	"github.com/hashicorp/hcl/v2"
)

// loadText writes text as dir/name and loads it as export does (nothing
// checked against this machine).
func loadText(t testing.TB, dir, name, text string) (*hclconfig.Config, error) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := hclconfig.Load(p)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, nil
}

// refusedAt returns the refusals of err, failing unless err is a
// *RefusedError whose every diagnostic has a position in the file.
func refusedAt(t testing.TB, err error) hcl.Diagnostics {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error %v, want a *RefusedError", err)
	}
	return re.Diags
}

// serviceKeys are the settings a rendered APP@.service may have: anything
// else is a directive a value injected.
var serviceKeys = []string{"Type", "RemainAfterExit", "NotifyAccess", "ExecStart", "WorkingDirectory", "Environment",
	"EnvironmentFile", "User", "Group", "Sockets", "NonBlocking", "Restart", "RestartSec", "TimeoutStartSec",
	"KillSignal", "TimeoutStopSec", "WatchdogSec", "MemoryMax"}

// checkSystemd reads the rendered units of cfg back as systemd would and
// compares each app's instance 0 with what the config says: the command,
// its directory, environment, env files, user, group, and the unit's
// description. lookPath is the one the rendering used.
func checkSystemd(cfg *hclconfig.Config, files []File, name string, lookPath func(string) (string, error)) error {
	byName := map[string]string{}
	for _, f := range files {
		byName[f.Name] = string(f.Data)
	}
	for _, a := range cfg.Apps {
		text, ok := byName[a.Name+"@.service"]
		if !ok {
			return fmt.Errorf("no unit for app %s", a.Name)
		}
		u, err := parseUnit(text)
		if err != nil {
			return fmt.Errorf("%s@.service: %v\n%s", a.Name, err, text)
		}
		for _, sec := range slices.Sorted(maps.Keys(u)) {
			if sec != "Unit" && sec != "Service" && sec != "Install" {
				return fmt.Errorf("%s@.service: unexpected section [%s]", a.Name, sec)
			}
		}
		for _, k := range u.keys("Service") {
			if !slices.Contains(serviceKeys, k) {
				return fmt.Errorf("%s@.service: unexpected setting %s=\n%s", a.Name, k, text)
			}
		}
		one := func(section, key string) (string, error) {
			vs := u.values(section, key)
			if len(vs) != 1 {
				return "", fmt.Errorf("%s@.service: %d %s= settings, want 1", a.Name, len(vs), key)
			}
			return specifiers(vs[0], "0")
		}
		desc, err := one("Unit", "Description")
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("clusterrun app %s, instance 0 (%s)", a.Name, name); desc != want {
			return fmt.Errorf("%s@.service: Description %q, want %q", a.Name, desc, want)
		}
		dir, err := one("Service", "WorkingDirectory")
		if err != nil {
			return err
		}
		if dir != a.Dir {
			return fmt.Errorf("%s@.service: WorkingDirectory %q, want %q", a.Name, dir, a.Dir)
		}
		env, err := environment(u.values("Service", "Environment"), "0")
		if err != nil {
			return fmt.Errorf("%s@.service: %v", a.Name, err)
		}
		if env["CLUSTERRUN_APP"] != a.Name || env["CLUSTERRUN_INSTANCE"] != "0" {
			return fmt.Errorf("%s@.service: identity %q %q", a.Name, env["CLUSTERRUN_APP"], env["CLUSTERRUN_INSTANCE"])
		}
		exec, err := one("Service", "ExecStart")
		if err != nil {
			return err
		}
		// systemd expands ${X} from the unit's environment, then the
		// manager's, which this process's stands for.
		lookup := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			lookup[k] = v
		}
		maps.Copy(lookup, env)
		argv, err := execArgv(u.values("Service", "ExecStart")[0], "0", lookup)
		if err != nil {
			return fmt.Errorf("%s@.service: ExecStart=%s: %v", a.Name, exec, err)
		}
		// env(1) in front sets the variables whose values reference others.
		if argv[0] == "/usr/bin/env" {
			i := 1
			for ; i < len(argv) && strings.Contains(argv[i], "=") && !strings.HasPrefix(argv[i], "/"); i++ {
				k, v, _ := strings.Cut(argv[i], "=")
				env[k] = v
			}
			argv = argv[i:]
		}
		// What the app's environment holds from the file's env attributes.
		for _, v := range appEnv(cfg, a) {
			if overridden(v.Name, env["PORT"] != "") {
				continue
			}
			if got, ok := env[v.Name]; !ok || got != a.Env[v.Name] {
				return fmt.Errorf("%s@.service: %s=%q, want %q", a.Name, v.Name, got, a.Env[v.Name])
			}
		}
		want := slices.Clone(a.Command)
		if !isShell(a) && !strings.Contains(want[0], "/") {
			if p, err := lookPath(want[0]); err == nil && !slices.Contains(systemdSearchPath, filepath.Dir(p)) {
				want[0] = p
			}
		} else if !filepath.IsAbs(want[0]) {
			want[0] = filepath.Join(a.Dir, want[0])
		}
		if !reflect.DeepEqual(argv, want) {
			return fmt.Errorf("%s@.service: ExecStart= runs %q, want %q", a.Name, argv, want)
		}
		var wantFiles []string
		for _, f := range (&renderer{cfg: cfg}).appEnvFiles(a) {
			p := f.path
			if f.optional {
				p = "-" + p
			}
			wantFiles = append(wantFiles, p)
		}
		var gotFiles []string
		for _, v := range u.values("Service", "EnvironmentFile") {
			p, err := specifiers(v, "0")
			if err != nil {
				return err
			}
			gotFiles = append(gotFiles, p)
		}
		if !slices.Equal(gotFiles, wantFiles) {
			return fmt.Errorf("%s@.service: EnvironmentFile= %q, want %q", a.Name, gotFiles, wantFiles)
		}
		for key, want := range map[string]string{"User": a.User, "Group": a.Group} {
			vs := u.values("Service", key)
			got := ""
			if len(vs) == 1 {
				if got, err = specifiers(vs[0], "0"); err != nil {
					return err
				}
			}
			if len(vs) > 1 || got != want {
				return fmt.Errorf("%s@.service: %s=%q, want %q", a.Name, key, vs, want)
			}
		}
	}
	return nil
}

// TestSystemdInjections are the reported ways a value of cluster.hcl
// wrote a directive of its own into a unit (issue 13): each is refused at
// the value's position, and nothing is rendered.
func TestSystemdInjections(t *testing.T) {
	for _, tc := range []struct {
		name, hcl string
		line, col int
	}{
		{"env_file", `app "web" {
  command  = ["/bin/sleep", "1"]
  env_file = ["-/nonexistent\nExecStartPre=/bin/touch /var/pwned"]
}`, 3, 15},
		{"group", `app "web" {
  command = ["/bin/sleep", "1"]
  group   = "nogroup\nAmbientCapabilities=CAP_SYS_ADMIN"
}`, 3, 13},
		{"user", `app "web" {
  command = ["/bin/sleep", "1"]
  user    = "nobody\nExecStartPost=/bin/sh -c id"
}`, 3, 13},
		{"dir", `app "web" {
  command = ["/bin/sleep", "1"]
  dir     = "/srv/x\n[Service]\nExecStartPre=/bin/true"
}`, 3, 13},
		{"global env_file", `env_file = ["-/etc/a.env\nUser=root"]
app "web" {
  command = ["/bin/sleep", "1"]
}`, 1, 13},
		{"unix listener", `listener "s" {
  address = "unix:/run/s.sock\nExecStartPre=/bin/true"
}
app "web" {
  command   = ["/bin/sleep", "1"]
  listeners = ["s"]
}`, 2, 13},
		{"env value", `app "web" {
  command = ["/bin/sleep", "1"]
  env     = { A = "x\ry" }
}`, 3, 19},
		{"program prefix", `app "web" {
  command = ["-sleep", "1"]
}`, 2, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadText(t, t.TempDir(), "cluster.hcl", tc.hcl)
			if err != nil {
				t.Fatalf("the config does not load: %v", err)
			}
			files, _, err := Render("systemd", cfg, Options{LookPath: testLookPath})
			if err == nil {
				t.Fatalf("rendered, want a refusal:\n%s", Concat("systemd", files))
			}
			diags := refusedAt(t, err)
			if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Start.Line != tc.line || diags[0].Subject.Start.Column != tc.col {
				t.Fatalf("refusals %v, want one at %d,%d", diags, tc.line, tc.col)
			}
			if files != nil {
				t.Errorf("files rendered beside the refusal")
			}
			t.Log(diags[0].Detail)
		})
	}
}

// TestSystemdSpecifiers: a "%" anywhere (here the directory's name, which
// is the cluster's name and the working directory) reaches systemd as
// "%%", so that it reads the "%" and not a specifier (issue 13: n%o read
// as n + the hostname of %o).
func TestSystemdSpecifiers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n%o 100%i")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadText(t, dir, "cluster.hcl", `app "web" {
  command = ["/bin/echo", "%n", "$HOME", "$${PORT}", "a b", "say \"hi\"\n", ""]
  env     = { A = "50% off", B = "$HOME", C = "line\nbreak\ttab" }
}`)
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := Render("systemd", cfg, Options{LookPath: testLookPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSystemd(cfg, files, "n%o 100%i", testLookPath); err != nil {
		t.Fatal(err)
	}
}

// TestSystemdRoundTrip renders every example and testdata config and reads
// the units back.
func TestSystemdRoundTrip(t *testing.T) {
	testMachine(t)
	for _, c := range configs(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, c)
			files, _, err := Render("systemd", cfg, Options{LookPath: testLookPath})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkSystemd(cfg, files, filepath.Base(cfg.Dir), testLookPath); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// systemdFuzzConfig is the config the systemd and Procfile fuzz targets
// render: each string of the input in one place a value can be (the env
// file optional, so that it loads whether or not it exists).
func systemdFuzzConfig(dir, arg, envVal, envFile, user, group, script string) string {
	account := ""
	if user != "" {
		account += "\n  user     = " + initconfig.Quote(user)
	}
	if group != "" {
		account += "\n  group    = " + initconfig.Quote(group)
	}
	return fmt.Sprintf(`env_file = [%s]
app "web" {
  command  = ["/bin/echo", %s, "x"]
  dir      = %s
  env      = { V = %s }%s
}
app "sh" {
  command = %s
}
`, initconfig.Quote("-"+envFile), initconfig.Quote(arg), initconfig.Quote(dir), initconfig.Quote(envVal), account, initconfig.Quote(script))
}

var fuzzSeeds = [][7]string{
	{"sub", "a b", "v", ".env", "www-data", "www-data", "echo $PORT"},
	{"/srv/n%o", "$HOME ${X} %i", "50%", "/etc/x.env", "1000", "0", "exec sleep 1"},
	{"sub\nevil: touch /tmp/x", "say \"hi\"\n", "a\u0085b", "/nonexistent\nExecStartPre=/bin/touch /var/pwned", "nobody", "nogroup\nAmbientCapabilities=CAP_SYS_ADMIN", "a\nb"},
	{" x ", `\`, "\t", "/e\\", "a b", "a:b", "echo 'a\\\nb'"},
	{"é/\u2028", ";", "\x01", "%%", "-x", ".", "$"},
}

// FuzzSystemd: whatever the config says, the rendered units mean exactly
// that (read back by the systemd reader above) or export refuses, at a
// position in the file.
func FuzzSystemd(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6])
	}
	root := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, dir, arg, envVal, envFile, user, group, script string) {
		n++
		d := filepath.Join(root, strconv.Itoa(n))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(d)
		cfg, err := loadText(t, d, "cluster.hcl", systemdFuzzConfig(dir, arg, envVal, envFile, user, group, script))
		if err != nil {
			t.Log("outcome: does not load")
			return // not a config clusterrun runs
		}
		files, _, err := Render("systemd", cfg, Options{LookPath: testLookPath})
		if err != nil {
			for _, d := range refusedAt(t, err) {
				if d.Subject == nil || d.Subject.Start.Line < 1 {
					t.Fatalf("refusal without a position: %s", d.Detail)
				}
			}
			t.Log("outcome: refused")
			return
		}
		if err := checkSystemd(cfg, files, filepath.Base(d), testLookPath); err != nil {
			t.Fatal(err)
		}
		t.Log("outcome: rendered and read back")
	})
}

// FuzzSystemdNames fuzzes what FuzzSystemd does not: the cluster's name
// (--name, or the config file's directory) in every Description=, and a
// unix listener's path in ListenStream=. A refusal of the name has no
// position in the file; every other one does.
func FuzzSystemdNames(f *testing.F) {
	f.Add("shop", "/run/shop.sock")
	f.Add("n%o", "/run/a b/%i.sock")
	f.Add("a\nExecStartPre=/bin/true", "/run/x\nExecStartPre=/bin/true")
	f.Add(" x\\", "/run/é;\"'.sock")
	root := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, name, sock string) {
		n++
		d := filepath.Join(root, strconv.Itoa(n))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(d)
		cfg, err := loadText(t, d, "cluster.hcl", fmt.Sprintf(`listener "s" {
  address = %s
}
app "web" {
  command   = ["/bin/echo"]
  listeners = ["s"]
}
`, initconfig.Quote("unix:"+sock)))
		if err != nil || name == "" {
			t.Log("outcome: does not load")
			return
		}
		files, _, err := Render("systemd", cfg, Options{LookPath: testLookPath, Name: name})
		if err != nil {
			for _, d := range refusedAt(t, err) {
				if (d.Subject == nil || d.Subject.Start.Line < 1) && !strings.Contains(d.Detail, "the cluster's name") {
					t.Fatalf("refusal without a position: %s", d.Detail)
				}
			}
			t.Log("outcome: refused")
			return
		}
		if err := checkSystemd(cfg, files, name, testLookPath); err != nil {
			t.Fatal(err)
		}
		var socket string
		for _, f := range files {
			if f.Name == "s.socket" {
				socket = string(f.Data)
			}
		}
		u, err := parseUnit(socket)
		if err != nil {
			t.Fatal(err)
		}
		listen := u.values("Socket", "ListenStream")
		got := ""
		if len(listen) == 1 {
			got, _ = specifiers(listen[0], "0")
		}
		if got != cfg.Listeners[0].Address {
			t.Fatalf("ListenStream=%q reads as %q, want %q\n%s", listen, got, cfg.Listeners[0].Address, socket)
		}
		t.Log("outcome: rendered and read back")
	})
}
