package hclconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestProcfile(t *testing.T) {
	tests := []struct {
		name    string
		osPort  string // "" = unset
		dotenv  string // "" = no .env file
		wantMin int    // the first app's PORT
	}{
		{name: "default base", wantMin: 5000},
		{name: "PORT from the environment", osPort: "8000", wantMin: 8000},
		{name: "non-numeric PORT is ignored", osPort: "http", wantMin: 5000},
		{name: ".env PORT wins, as in foreman", osPort: "8000", dotenv: "PORT=3000\n", wantMin: 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string(nil), testEnviron...)
			if tt.osPort != "" {
				env = append(env, "PORT="+tt.osPort)
			}
			fixedEnviron(t, env...)
			dir := t.TempDir()
			if tt.dotenv != "" {
				if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(tt.dotenv), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, _, diags := Parse(filepath.Join(dir, "Procfile"), []byte("web: a\nworker: b\n"))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			// web is served through a proxy listener on foreman's port;
			// the other lines keep theirs.
			if l := cfg.Listener("web"); l == nil || l.Address != fmt.Sprintf("0.0.0.0:%d", tt.wantMin) {
				t.Errorf("web listener = %+v, want address 0.0.0.0:%d", l, tt.wantMin)
			}
			if got := []int{cfg.Apps[0].Port, cfg.Apps[1].Port}; !reflect.DeepEqual(got, []int{0, tt.wantMin + 100}) {
				t.Errorf("ports = %v, want 0 (web) and %d", got, tt.wantMin+100)
			}
		})
	}
}

func TestProcfileValid(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, diags := mustLoad(t, "testdata/procfile/valid/Procfile")
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	dir, _ := filepath.Abs("testdata/procfile/valid")
	if !cfg.Procfile || cfg.Dir != dir {
		t.Errorf("Procfile=%v Dir=%q", cfg.Procfile, cfg.Dir)
	}
	wantEnv := map[string]string{"RACK_ENV": "development", "DATABASE_URL": "postgres://localhost/app"}
	if !reflect.DeepEqual(cfg.Env, wantEnv) {
		t.Errorf("Config.Env = %v, want %v", cfg.Env, wantEnv)
	}
	want := []struct {
		name, command string
		port, line    int
	}{
		{"web", "bundle exec puma -p $PORT -C config/puma.rb", 0, 2},
		{"worker", "bundle exec sidekiq -q default", 5100, 3},
		{"release", "./bin/release --verbose", 5200, 4},
		{"clock", "ruby clock.rb # runs every minute", 5300, 6},
	}
	if len(cfg.Apps) != len(want) {
		t.Fatalf("got %d apps, want %d", len(cfg.Apps), len(want))
	}
	for i, w := range want {
		a := cfg.Apps[i]
		if a.Name != w.name || !reflect.DeepEqual(a.Command, []string{"/bin/sh", "-c", "exec " + w.command}) || a.Port != w.port {
			t.Errorf("app %d = %q %q port %d, want %q %q port %d", i, a.Name, a.Command, a.Port, w.name, "exec "+w.command, w.port)
		}
		if a.Written.CommandString != w.command {
			t.Errorf("app %s written command = %q, want %q", a.Name, a.Written.CommandString, w.command)
		}
		if a.DefRange.Start.Line != w.line {
			t.Errorf("app %s defined on line %d, want %d", a.Name, a.DefRange.Start.Line, w.line)
		}
		if a.Instances != 1 || a.Dir != dir || !reflect.DeepEqual(a.Env, wantEnv) {
			t.Errorf("app %s = %+v", a.Name, a)
		}
		if want := []string{filepath.Join(dir, ".env")}; !reflect.DeepEqual(a.EnvFiles, want) {
			t.Errorf("app %s env files = %q, want %q", a.Name, a.EnvFiles, want)
		}
		// web is behind the runner's proxy, so it reloads start-first and
		// is ready once its private port answers; the others bind their
		// port themselves and must stop before their replacement starts.
		// release (Heroku's release phase) is a step every other line
		// waits for: done once it exits 0, never restarted.
		wantReady, wantOrder, wantListeners, wantDeps, wantPolicy := ReadyDelay, OrderStopFirst, []string(nil), []string{"release"}, RestartOnFailure
		switch a.Name {
		case "web":
			wantReady, wantOrder, wantListeners = ReadyTCP, OrderStartFirst, []string{"web"}
		case "release":
			wantReady, wantOrder, wantDeps, wantPolicy = ReadyExit, OrderStartFirst, nil, RestartNever
		}
		if a.Ready.Check != wantReady || a.Reload.Order != wantOrder || !reflect.DeepEqual(a.Listeners, wantListeners) {
			t.Errorf("app %s ready %q order %q listeners %q, want %q %q %q", a.Name, a.Ready.Check, a.Reload.Order, a.Listeners, wantReady, wantOrder, wantListeners)
		}
		if !reflect.DeepEqual(a.DependsOn, wantDeps) || a.Restart.Policy != wantPolicy {
			t.Errorf("app %s depends on %q, restart %q; want %q, %q", a.Name, a.DependsOn, a.Restart.Policy, wantDeps, wantPolicy)
		}
	}
	wantListener := Listener{Name: "web", Network: "tcp", Address: "0.0.0.0:5000", Mode: Proxy, Balance: BalanceLeastConn}
	if len(cfg.Listeners) != 1 {
		t.Fatalf("listeners = %+v, want only web", cfg.Listeners)
	}
	if l := *cfg.Listeners[0]; l.DefRange.Start.Line != 2 {
		t.Errorf("web listener defined on line %d, want 2", l.DefRange.Start.Line)
	} else if l.DefRange, l.AddressRange = (hcl.Range{}), (hcl.Range{}); l != wantListener {
		t.Errorf("web listener = %+v, want %+v", l, wantListener)
	}
}

func TestProcfileDetection(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	for _, name := range []string{"Procfile", "Procfile.dev", "dir/Procfile.local"} {
		cfg, _, diags := Parse(name, []byte("web: x\n"))
		if diags.HasErrors() || !cfg.Procfile {
			t.Errorf("%s: not read as a Procfile: %v", name, diags)
		}
	}
	// "web: x" is not HCL, so reading it as cluster.hcl must fail.
	if _, _, diags := Parse("cluster.hcl", []byte("web: x\n")); !diags.HasErrors() {
		t.Errorf("cluster.hcl parsed as a Procfile")
	}
}

// A web line that sets PORT itself listens there, as under foreman: no
// proxy in front, the runner probes that port, a reload stops it first,
// and a warning at the assignment says how to get the proxy back.
func TestProcfileWebSetsItsOwnPort(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	for _, line := range []string{
		"web: PORT=3000 bundle exec puma -C config/puma.rb",
		"web: env PORT=3000 RAILS_ENV=production bundle exec puma",
		"web: RAILS_ENV=x env PORT='3000' puma",
	} {
		src := line + "\nworker: bundle exec sidekiq\n"
		cfg, _, diags := Parse(filepath.Join(t.TempDir(), "Procfile"), []byte(src))
		if cfg == nil {
			t.Fatalf("%q: %v", line, diags)
		}
		web := cfg.App("web")
		if len(cfg.Listeners) != 0 || len(web.Listeners) != 0 || web.Env["PORT"] != "3000" || web.Port != 0 ||
			web.Ready.Check != ReadyTCP || web.Reload.Order != OrderStopFirst || web.InstancePort(0) != 3000 {
			t.Errorf("%q: listeners %v, web %+v", line, cfg.Listeners, web)
		}
		if cfg.App("worker").Port != 5100 {
			t.Errorf("%q: worker's port %d, want foreman's 5100", line, cfg.App("worker").Port)
		}
		if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags[0].Summary != "Web line sets its own PORT" {
			t.Fatalf("%q: diagnostics %v, want the one warning", line, diags)
		}
		if at := diags[0].Subject; src[at.Start.Byte:at.End.Byte] != "PORT=3000" && src[at.Start.Byte:at.End.Byte] != "PORT='3000'" {
			t.Errorf("%q: the warning points at %q", line, src[at.Start.Byte:at.End.Byte])
		}
	}
	// PORT set from an expansion, or not to a number, is not known here:
	// web stays behind the proxy.
	for _, line := range []string{"web: PORT=$WEB_PORT puma", "web: PORT=abc puma", "web: puma -p $PORT"} {
		cfg, _, diags := Parse(filepath.Join(t.TempDir(), "Procfile"), []byte(line+"\n"))
		if cfg == nil || len(cfg.Listeners) != 1 || len(diags) != 0 {
			t.Errorf("%q: listeners %v, %v", line, cfg.Listeners, diags)
		}
	}
}

func TestProcfileBasePort(t *testing.T) {
	for _, tc := range []struct {
		dotEnv  map[string]string
		environ []string
		port    int
		from    string
	}{
		{nil, nil, 5000, "foreman's default"},
		{map[string]string{"PORT": "3000"}, []string{"PORT=4000"}, 3000, "PORT in .env"},
		{map[string]string{"PORT": "x"}, []string{"PORT=4000"}, 4000, "PORT in the environment"},
		{nil, []string{"PORT=0", "PORT=99999"}, 5000, "foreman's default"},
	} {
		if port, from := ProcfileBasePort(tc.dotEnv, tc.environ); port != tc.port || from != tc.from {
			t.Errorf("ProcfileBasePort(%v, %v) = %d, %q; want %d, %q", tc.dotEnv, tc.environ, port, from, tc.port, tc.from)
		}
	}
	if ProcfilePort(5000, 2) != 5200 {
		t.Errorf("ProcfilePort(5000, 2) = %d", ProcfilePort(5000, 2))
	}
}
