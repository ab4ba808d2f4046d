package initconfig

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// What FromCommand writes, hclconfig reads back as the command said:
// argv, instances, listener, mode, readiness and env, including values
// that look like HCL templates, quotes and newlines.
func TestFromCommandRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Command
		// what the file says, as hclconfig reads it
		app, listener, address string
		mode                   hclconfig.Mode
		instances              int
		ready                  hclconfig.ReadyCheck
		readyPath              string
	}{
		{name: "pm2 start server.js -i 4", c: Command{Argv: []string{"node", "server.js"}, Instances: "4", Address: "8080"},
			app: "server", listener: "server", address: ":8080", mode: hclconfig.Shared, instances: 4, ready: hclconfig.ReadyNotify},
		{name: "no listener, program's own name", c: Command{Argv: []string{"./bin/worker", "--queue", "mail"}},
			app: "worker", instances: 1, ready: hclconfig.ReadyDelay},
		{name: "proxy, http ready, host:port", c: Command{Argv: []string{"python3", "-u", "app.py"}, Address: "127.0.0.1:9000", Mode: "proxy", Ready: "http", ReadyPath: "/healthz", Instances: "max"},
			app: "app", listener: "app", address: "127.0.0.1:9000", mode: hclconfig.Proxy, ready: hclconfig.ReadyHTTP, readyPath: "/healthz"},
		{name: "a name and hostile values", c: Command{Argv: []string{"sh", "-c", "echo \"${HOME}\" %{x} \\ \n done"}, Name: "my-app",
			Env: map[string]string{"A": "${not.a.ref}", "B": "say \"hi\"\nthere", "C_2": "%{ if x }"}},
			app: "my-app", instances: 1, ready: hclconfig.ReadyDelay},
		{name: "reuseport, explicit check", c: Command{Argv: []string{"node", "--enable-source-maps", "dist/main.mjs"}, Address: "3000", Mode: "reuseport", Ready: "delay"},
			app: "main", listener: "main", address: ":3000", mode: hclconfig.ReusePort, instances: 1, ready: hclconfig.ReadyDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := FromCommand(tc.c)
			path := filepath.Join(t.TempDir(), "cluster.hcl")
			cfg, _, diags := hclconfig.Parse(path, res.File)
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("hclconfig refuses what FromCommand wrote: %v\n%s", diags, res.File)
			}
			if len(cfg.Apps) != 1 {
				t.Fatalf("%d apps, want 1\n%s", len(cfg.Apps), res.File)
			}
			a := cfg.Apps[0]
			if a.Name != tc.app || !slices.Equal(a.Command, tc.c.Argv) {
				t.Errorf("app %q runs %q; want %q running %q\n%s", a.Name, a.Command, tc.app, tc.c.Argv, res.File)
			}
			if tc.instances != 0 && a.Instances != tc.instances {
				t.Errorf("instances %d, want %d", a.Instances, tc.instances)
			}
			if a.Ready.Check != tc.ready || a.Ready.Path != tc.readyPath && tc.readyPath != "" {
				t.Errorf("ready %q %q, want %q %q", a.Ready.Check, a.Ready.Path, tc.ready, tc.readyPath)
			}
			for k, v := range tc.c.Env {
				if a.Env[k] != v {
					t.Errorf("env %s = %q, want %q", k, a.Env[k], v)
				}
			}
			if tc.listener == "" {
				if len(cfg.Listeners) != 0 || len(a.Listeners) != 0 {
					t.Errorf("listeners %v / %v, want none", cfg.Listeners, a.Listeners)
				}
				return
			}
			if len(cfg.Listeners) != 1 || !slices.Equal(a.Listeners, []string{tc.listener}) {
				t.Fatalf("listeners %v, app's %v; want one, %q", cfg.Listeners, a.Listeners, tc.listener)
			}
			if l := cfg.Listeners[0]; l.Name != tc.listener || l.Address != tc.address || l.Mode != tc.mode {
				t.Errorf("listener %q on %q (%s), want %q on %q (%s)", l.Name, l.Address, l.Mode, tc.listener, tc.address, tc.mode)
			}
		})
	}
}

// An app runs where Dir says, once written.
func TestFromCommandDir(t *testing.T) {
	dir := t.TempDir()
	res := FromCommand(Command{Argv: []string{"true"}, Dir: dir, Env: map[string]string{}})
	cfg, _, diags := hclconfig.Parse(filepath.Join(t.TempDir(), "cluster.hcl"), res.File)
	if diags.HasErrors() {
		t.Fatalf("%v\n%s", diags, res.File)
	}
	if got := cfg.Apps[0].Dir; got != dir {
		t.Errorf("dir %q, want %q", got, dir)
	}
}

func TestCommandName(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"node", "server.js"}, "server"},
		{[]string{"/usr/bin/node", "--inspect", "src/index.ts"}, "index"},
		{[]string{"python3", "-m", "http.server"}, "http-server"},
		{[]string{"ruby", "app.rb"}, "app"},
		{[]string{"./bin/api", "-v"}, "api"},
		{[]string{"bundle", "exec", "puma"}, "bundle"},
		{[]string{"node"}, "node"},
		{[]string{"my prog!"}, "my-prog-"},
		{nil, "app"},
	} {
		if got := CommandName(tc.argv); got != tc.want {
			t.Errorf("CommandName(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}
