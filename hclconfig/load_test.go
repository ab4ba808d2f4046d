package hclconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func TestValidFilesLoad(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	paths, err := filepath.Glob("testdata/valid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 5 {
		t.Fatalf("found %d valid configs, want at least 5", len(paths))
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			mustLoad(t, p)
		})
	}
}

func TestSpecExample(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, diags := mustLoad(t, "testdata/valid/spec.hcl")
	dir, _ := filepath.Abs("testdata/valid")

	if cfg.Path != filepath.Join(dir, "spec.hcl") || cfg.Dir != dir || cfg.Procfile {
		t.Errorf("Path, Dir, Procfile = %q, %q, %v", cfg.Path, cfg.Dir, cfg.Procfile)
	}
	// .env sets LOG_LEVEL=debug; the env attribute overrides it.
	wantEnv := map[string]string{
		"LOG_LEVEL":    "info",
		"SHARED":       "from-global-env-file",
		"DATABASE_URL": "postgres://localhost:5432/app",
	}
	if !reflect.DeepEqual(cfg.Env, wantEnv) {
		t.Errorf("Config.Env = %v, want %v", cfg.Env, wantEnv)
	}

	l := cfg.Listener("http")
	want := &Listener{Name: "http", Network: "tcp", Address: "0.0.0.0:8080", Mode: Proxy, Backlog: 1024, Balance: BalanceLeastConn, DefRange: l.DefRange, AddressRange: l.AddressRange}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("listener http = %+v, want %+v", l, want)
	}
	if m := cfg.Metrics; m == nil || m.Address != "127.0.0.1:9102" || m.DefRange.Start.Line != 16 {
		t.Errorf("metrics = %+v", m)
	}
	if want := []string{".env", "-.env.local"}; !reflect.DeepEqual(cfg.WrittenEnvFiles, want) {
		t.Errorf("WrittenEnvFiles = %q, want %q", cfg.WrittenEnvFiles, want)
	}
	if want := []WrittenVar{{Name: "LOG_LEVEL", Value: "info", Source: `"info"`, Literal: true}}; !reflect.DeepEqual(cfg.WrittenEnv, want) {
		t.Errorf("WrittenEnv = %+v, want %+v", cfg.WrittenEnv, want)
	}

	web := cfg.App("web")
	checks := []struct {
		name      string
		got, want any
	}{
		{"command", web.Command, []string{"node", "server.js"}},
		{"dir", web.Dir, filepath.Join(dir, "web")},
		{"instances", web.Instances, 4},
		{"listeners", web.Listeners, []string{"http"}},
		{"user", web.User, "www-data"},
		{"group", web.Group, "www-data"},
		{"depends_on", web.DependsOn, []string{"db"}},
		{"ready", web.Ready, Ready{Check: ReadyNotify, Path: "/healthz", Delay: time.Second, Timeout: 30 * time.Second}},
		{"restart", web.Restart, Restart{
			Policy: RestartOnFailure, Backoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second,
			MinUptime: 5 * time.Second, MaxRestarts: 10, Window: time.Minute, MaxMemory: 512 << 20,
		}},
		{"health", web.Health, Health{Check: HealthHTTP, Path: "/healthz", Interval: 10 * time.Second, Timeout: 2 * time.Second, Failures: 3}},
		{"watch", web.Watch, &Watch{Paths: []string{filepath.Join(dir, "src")}, Ignore: []string{"**/*.log", "node_modules"}}},
		{"stop", web.Stop, Stop{Signal: syscall.SIGTERM, Timeout: 10 * time.Second}},
		{"reload", web.Reload, Reload{Parallel: 1, Order: OrderStartFirst}},
		{"env files", web.EnvFiles, []string{filepath.Join(dir, ".env"), filepath.Join(dir, ".env.local"), filepath.Join(dir, "web/.env")}},
		{"written", web.Written, Written{
			Command:   []string{"node", "server.js"},
			Instances: "4",
			Env:       []WrittenVar{{Name: "NODE_ENV", Value: "production", Source: `"production"`, Literal: true}},
			EnvFiles:  []string{"web/.env"},
		}},
		{"required", web.Required, false},
		{"port", web.Port, 0},
		// global env_file < global env < app env_file < app env
		{"env", web.Env, map[string]string{
			"LOG_LEVEL":    "info",
			"SHARED":       "from-app-env-file",
			"DATABASE_URL": "postgres://localhost:5432/app",
			"NODE_ENV":     "production",
			"WEB_ONLY":     "yes",
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("web %s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	db := cfg.App("db")
	if db.Env["PORT"] != "5432" || db.Ready.Check != ReadyTCP || db.Ready.Timeout != time.Minute {
		t.Errorf("db = %+v", db)
	}
	// Written with exec already, so it runs as written.
	if !reflect.DeepEqual(db.Command, []string{"/bin/sh", "-c", "exec postgres -D ./data"}) {
		t.Errorf("db command = %q", db.Command)
	}
	if db.Written.CommandString != "exec postgres -D ./data" || db.Written.Command != nil || db.Written.Instances != "" {
		t.Errorf("db written = %+v", db.Written)
	}
	if want := (Written{Env: []WrittenVar{{Name: "PORT", Value: "5432", Source: "5432", Literal: true}}, CommandString: db.Written.CommandString}); !reflect.DeepEqual(db.Written, want) {
		t.Errorf("db written = %+v, want %+v", db.Written, want)
	}

	// The example documents path and delay next to check = "notify";
	// that is worth a warning each, never an error.
	var warnings []string
	for _, d := range diags {
		warnings = append(warnings, d.Summary)
	}
	if want := []string{"Ready path is ignored", "Ready delay is ignored"}; !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}

func TestMinimalDefaults(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, diags := mustLoad(t, "testdata/valid/minimal.hcl")
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	dir, _ := filepath.Abs("testdata/valid")
	got := cfg.App("web")
	want := &App{
		Name:      "web",
		Command:   []string{"/bin/sh", "-c", "exec python3 -m http.server $PORT"},
		Dir:       dir,
		Instances: 1,
		Env:       map[string]string{},
		Written:   Written{CommandString: "python3 -m http.server $PORT"},
		Ready:     Ready{Check: ReadyDelay, Delay: DefaultReadyDelay, Timeout: DefaultReadyTimeout},
		Restart: Restart{
			Policy: RestartOnFailure, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff,
			MinUptime: DefaultMinUptime, MaxRestarts: DefaultMaxRestarts, Window: DefaultWindow,
		},
		Stop:     Stop{Signal: syscall.SIGTERM, Timeout: DefaultStopTimeout},
		Reload:   Reload{Parallel: 1, Order: OrderStartFirst},
		DefRange: got.DefRange,
		At:       got.At,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("app = %+v\nwant  %+v", got, want)
	}
	if len(cfg.Env) != 0 || cfg.Env == nil {
		t.Errorf("Config.Env = %#v, want empty and non-nil", cfg.Env)
	}
	if r := got.DefRange; r.Filename != "testdata/valid/minimal.hcl" || r.Start.Line != 2 {
		t.Errorf("DefRange = %v", r)
	}
}

func TestExpressions(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, _ := mustLoad(t, "testdata/valid/expressions.hcl")

	for k, want := range map[string]string{
		"GREETING":       "HELLO", // env.X sees the top-level env_file
		"HOME_DIR":       "/home/tester",
		"WORKERS":        "3",
		"DEBUG":          "true",
		"RATIO":          "1.5",
		"REGION":         "eu-west-1",
		"JOINED":         "a,b,c",
		"FORMATTED":      "build-007",
		"EXPR_INSTANCES": "2",
		"TEMPLATE":       "/home/tester/x-hello",
		"CONSTANT":       "ab",
	} {
		if got := cfg.Env[k]; got != want {
			t.Errorf("Config.Env[%s] = %q, want %q", k, got, want)
		}
	}

	written := make(map[string]WrittenVar)
	var order []string
	for _, v := range cfg.WrittenEnv {
		written[v.Name] = v
		order = append(order, v.Name)
	}
	if want := []string{"GREETING", "HOME_DIR", "WORKERS", "DEBUG", "RATIO", "REGION", "JOINED", "FORMATTED", "TEMPLATE", "CONSTANT"}; !reflect.DeepEqual(order, want) {
		t.Errorf("WrittenEnv order = %q, want %q", order, want)
	}
	for _, want := range []WrittenVar{
		{Name: "GREETING", Value: "HELLO", Source: "upper(env.EXPR_GREETING)", Refs: []string{"EXPR_GREETING"}},
		{Name: "HOME_DIR", Value: "/home/tester", Source: "env.HOME", Refs: []string{"HOME"}},
		{Name: "WORKERS", Value: "3", Source: "3", Literal: true},
		{Name: "DEBUG", Value: "true", Source: "true", Literal: true},
		{Name: "REGION", Value: "eu-west-1", Source: `lookup(env, "REGION", "eu-west-1")`, Refs: []string{"REGION"}},
		{Name: "JOINED", Value: "a,b,c", Source: `join(",", ["a", "b", "c"])`},
		{Name: "TEMPLATE", Value: "/home/tester/x-hello", Source: `"${env.HOME}/x-${env["EXPR_GREETING"]}"`, Refs: []string{"EXPR_GREETING", "HOME"}},
		{Name: "CONSTANT", Value: "ab", Source: `"${"a"}b"`, Literal: true},
	} {
		if got := written[want.Name]; !reflect.DeepEqual(got, want) {
			t.Errorf("WrittenEnv %s = %+v, want %+v", want.Name, got, want)
		}
	}

	worker := cfg.App("worker")
	merged := `merge({ A = "1" }, { B = "2" })`
	wantWritten := Written{
		Command:   []string{"/home/tester/bin/worker", "--queue", "emails"},
		Instances: "max",
		Env: []WrittenVar{
			{Name: "A", Value: "1", Source: merged},
			{Name: "B", Value: "2", Source: merged},
		},
	}
	if !reflect.DeepEqual(worker.Written, wantWritten) {
		t.Errorf("worker written = %+v, want %+v", worker.Written, wantWritten)
	}
	if worker.Instances != runtime.NumCPU() {
		t.Errorf("instances = \"max\" gave %d, want %d", worker.Instances, runtime.NumCPU())
	}
	if want := []string{"/home/tester/bin/worker", "--queue", "emails"}; !reflect.DeepEqual(worker.Command, want) {
		t.Errorf("worker command = %q, want %q", worker.Command, want)
	}
	if worker.Dir != "/srv/worker" || worker.Env["A"] != "1" || worker.Env["B"] != "2" || worker.Env["GREETING"] != "HELLO" {
		t.Errorf("worker = %+v", worker)
	}

	cron := cfg.App("cron")
	if want := []string{"sh", "-c", "run-cron"}; !reflect.DeepEqual(cron.Command, want) {
		t.Errorf("cron command = %q, want %q", cron.Command, want)
	}
	if cron.Instances != 2 || cron.Written.Instances != "2" {
		t.Errorf("instances from a numeric env string = %d (written %q), want 2", cron.Instances, cron.Written.Instances)
	}
	if !reflect.DeepEqual(cron.Written.Command, cron.Command) || cron.Written.CommandString != "" {
		t.Errorf("cron written command = %q / %q", cron.Written.Command, cron.Written.CommandString)
	}
	if cron.Env["EXPR_GREETING"] != "overridden" || cron.Env["COUNT"] != "3" {
		t.Errorf("cron env = %v", cron.Env)
	}
	r := cron.Restart
	if r.Policy != RestartAlways || r.Backoff != 250*time.Millisecond || r.MaxBackoff != 90*time.Second || r.MaxMemory != 1<<20 {
		t.Errorf("cron restart = %+v", r)
	}
}

func TestSockets(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, diags := mustLoad(t, "testdata/valid/sockets.hcl")
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	dir, _ := filepath.Abs("testdata/valid")

	want := []Listener{
		{Name: "public", Network: "tcp", Address: ":0", Mode: ReusePort, Backlog: 511, NonBlocking: true},
		{Name: "admin", Network: "unix", Address: filepath.Join(dir, "run/admin.sock"), Mode: Shared},
		{Name: "metrics", Network: "tcp", Address: "[::1]:9090", Mode: Shared},
		{Name: "other-random", Network: "tcp", Address: ":0", Mode: Shared},
	}
	if len(cfg.Listeners) != len(want) {
		t.Fatalf("got %d listeners, want %d", len(cfg.Listeners), len(want))
	}
	for i, l := range cfg.Listeners {
		got := *l
		got.DefRange, got.AddressRange = hcl.Range{}, hcl.Range{}
		if got != want[i] {
			t.Errorf("listener %d = %+v, want %+v", i, got, want[i])
		}
	}

	api := cfg.App("api")
	if api.Dir != filepath.Join(dir, "api") || api.Instances != 2 || api.Reload.Parallel != 2 || api.Ready.Check != ReadyNotify {
		t.Errorf("api = %+v", api)
	}
	if want := []string{"public", "admin", "metrics"}; !reflect.DeepEqual(api.Listeners, want) {
		t.Errorf("api listeners = %q, want %q", api.Listeners, want)
	}
	store := cfg.App("store")
	if !store.Required || store.Stop.Signal != syscall.SIGINT || store.Stop.Timeout != time.Minute {
		t.Errorf("store = %+v", store)
	}
	var names []string
	for _, a := range cfg.Apps {
		names = append(names, a.Name)
	}
	if want := []string{"api", "cache", "store"}; !reflect.DeepEqual(names, want) {
		t.Errorf("apps in order %q, want %q", names, want)
	}
}

func TestProbes(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, _ := mustLoad(t, "testdata/valid/probes.hcl")
	tests := []struct {
		app   string
		ready Ready
	}{
		{"frontend", Ready{Check: ReadyHTTP, Path: "/", Delay: DefaultReadyDelay, Timeout: 45 * time.Second}},
		{"health", Ready{Check: ReadyHTTP, Path: "/healthz?full=1", Delay: DefaultReadyDelay, Timeout: DefaultReadyTimeout}},
		{"slow", Ready{Check: ReadyDelay, Delay: 0, Timeout: time.Second}},
	}
	for _, tt := range tests {
		if got := cfg.App(tt.app).Ready; got != tt.ready {
			t.Errorf("%s ready = %+v, want %+v", tt.app, got, tt.ready)
		}
	}
	fe := cfg.App("frontend").Restart
	if fe.Policy != RestartNever || fe.MaxRestarts != 0 || fe.MinUptime != 0 || fe.Window != 10*time.Minute || fe.MaxMemory != 3<<29 {
		t.Errorf("frontend restart = %+v", fe)
	}
	if got := cfg.App("backend"); got.Env["PORT"] != "4000" || got.Stop.Signal != syscall.SIGQUIT {
		t.Errorf("backend = %+v", got)
	}
	if got := cfg.App("slow").Restart; got.Backoff != 0 || got.MaxBackoff != 0 || got.MaxMemory != 100e6 {
		t.Errorf("slow restart = %+v", got)
	}
}

// TestRelativeFilename checks that the file name is kept as given for
// messages while every path in the Config is absolute.
func TestRelativeFilename(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	src := []byte(`
listener "sock" { address = "unix:../s.sock" }
app "a" {
  command   = ["x"]
  dir       = "sub/dir"
  listeners = ["sock"]
}
`)
	cfg, files, diags := Parse("some/where/cluster.hcl", src)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	abs, _ := filepath.Abs("some/where")
	if cfg.Dir != abs || cfg.App("a").Dir != filepath.Join(abs, "sub/dir") {
		t.Errorf("Dir = %q, app dir = %q", cfg.Dir, cfg.App("a").Dir)
	}
	if got, want := cfg.Listener("sock").Address, filepath.Join(filepath.Dir(abs), "s.sock"); got != want {
		t.Errorf("unix address = %q, want %q", got, want)
	}
	if files["some/where/cluster.hcl"] == nil {
		t.Errorf("files map keys: %v", files)
	}
}

func TestEnvFileOptional(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cluster.hcl", `
env_file = ["-.env.local", "base.env"]
app "a" {
  command  = ["x"]
  env_file = ["-nope.env", "-app.env"]
}
`)
	write("base.env", "A=base\nB=base\n")
	write("app.env", "B=app\n")

	cfg, _, diags := Load(filepath.Join(dir, "cluster.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := cfg.App("a").Env; got["A"] != "base" || got["B"] != "app" {
		t.Errorf("env = %v", got)
	}

	// Once the optional file exists it is read, and the later file wins.
	write(".env.local", "A=local\nC=local\n")
	cfg, _, diags = Load(filepath.Join(dir, "cluster.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := cfg.Env; got["A"] != "base" || got["C"] != "local" {
		t.Errorf("Config.Env = %v", got)
	}
}

// TestEnvFileDoesNotTouchEnviron guards the rule that env files are read,
// never loaded into the runner's own environment.
func TestEnvFileDoesNotTouchEnviron(t *testing.T) {
	const key = "CLUSTERRUN_TEST_ENVFILE_LEAK"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(key+"=leaked\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := []byte("env_file = [\".env\"]\napp \"a\" { command = [env." + key + "] }\n")
	cfg, _, diags := Parse(filepath.Join(dir, "cluster.hcl"), src)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.App("a").Command[0] != "leaked" {
		t.Errorf("env.%s = %q, want the env file's value", key, cfg.App("a").Command[0])
	}
	if v, ok := os.LookupEnv(key); ok {
		t.Errorf("the env file set %s=%q in the runner's environment", key, v)
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, files, diags := Load(filepath.Join(t.TempDir(), "cluster.hcl"))
	if cfg != nil || !diags.HasErrors() || files == nil {
		t.Fatalf("cfg=%v files=%v diags=%v", cfg, files, diags)
	}
	if !strings.Contains(diags[0].Detail, "no such file") {
		t.Errorf("detail = %q", diags[0].Detail)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	if _, err := Find(dir); err == nil || !strings.Contains(err.Error(), "no cluster.hcl or Procfile") {
		t.Errorf("empty dir: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(dir); err != nil || got != filepath.Join(dir, "Procfile") {
		t.Errorf("with Procfile: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(""), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(dir); err != nil || got != filepath.Join(dir, "cluster.hcl") {
		t.Errorf("with both: %q, %v", got, err)
	}
	if err := os.Remove(filepath.Join(dir, "cluster.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "cluster.hcl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("cluster.hcl is a directory: err = %v", err)
	}
}

func TestWriteDiagnosticsColorAndWidth(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	_, files, diags := Parse("testdata/invalid/bad_mode.hcl", []byte("listener \"l\" {\n  address = \":1\"\n  mode = \"fast\"\n}\napp \"a\" {\n  command = [\"x\"]\n  listeners = [\"l\"]\n}\n"))
	var plain, colored, wrapped strings.Builder
	if err := WriteDiagnostics(&plain, files, diags, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiagnostics(&colored, files, diags, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiagnostics(&wrapped, files, diags, 40, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(colored.String(), "\x1b[") {
		t.Errorf("color flag not honoured:\n%s\n%s", plain.String(), colored.String())
	}
	if !strings.Contains(plain.String(), `3:   mode = "fast"`) {
		t.Errorf("no snippet:\n%s", plain.String())
	}
	if strings.Count(wrapped.String(), "\n") <= strings.Count(plain.String(), "\n") {
		t.Errorf("width 40 did not wrap the detail:\n%s", wrapped.String())
	}
}

func TestProxy(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, diags := mustLoad(t, "testdata/valid/proxy.hcl")
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	if l := cfg.Listener("http"); l.Mode != Proxy || l.Balance != BalanceRoundRobin {
		t.Errorf("http = %+v", l)
	}
	if l := cfg.Listener("admin"); l.Mode != Proxy || l.Balance != BalanceLeastConn || l.MaxConnections != 0 || l.MaxPerInstance != 0 || l.QueueTimeout != 0 {
		t.Errorf("admin = %+v, want the least-conn default and no limits", l)
	}
	if l := cfg.Listener("sticky"); l.Balance != BalanceIPHash || l.MaxConnections != 5000 || l.MaxPerInstance != 8 || l.QueueTimeout != 2*time.Second {
		t.Errorf("sticky = %+v, want ip-hash, 5000, 8 and 2s", l)
	}
	web := cfg.App("web")
	if web.Ready.Check != ReadyTCP {
		t.Errorf("web ready = %+v, want the tcp default of a proxied app", web.Ready)
	}
	if want := (Health{Check: HealthTCP, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}); web.Health != want {
		t.Errorf("web health = %+v, want %+v", web.Health, want)
	}
	if want := []string{"/bin/sh", "-c", "FOO=1 exec python3 server.py --port $PORT"}; !reflect.DeepEqual(web.Command, want) {
		t.Errorf("web command = %q, want %q", web.Command, want)
	}
	api := cfg.App("api")
	if api.Ready.Check != ReadyHTTP || api.Ready.Path != "/ready" {
		t.Errorf("api ready = %+v", api.Ready)
	}
	if want := (Health{Check: HealthHTTP, Path: "/", Interval: 5 * time.Second, Timeout: 500 * time.Millisecond, Failures: 1}); api.Health != want {
		t.Errorf("api health = %+v, want %+v", api.Health, want)
	}
	worker := cfg.App("worker")
	if want := (Health{Check: HealthWatchdog, Interval: 30 * time.Second, Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}); worker.Health != want {
		t.Errorf("worker health = %+v, want %+v", worker.Health, want)
	}
	if worker.Reload != (Reload{Parallel: 1, Order: OrderStopFirst}) || worker.Ready.Check != ReadyDelay || worker.Watch != nil {
		t.Errorf("worker = %+v", worker)
	}
	if cfg.Metrics != nil {
		t.Errorf("metrics = %+v, want nil without a metrics block", cfg.Metrics)
	}
}

// TestProxyDefaultReadyWarning: a delay written for an app whose check is
// the proxy default says where the check came from.
func TestProxyDefaultReadyWarning(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	src := `
listener "http" {
  address = ":8080"
  mode    = "proxy"
}
app "web" {
  command   = ["./web"]
  listeners = ["http"]
  ready {
    delay = "2s"
  }
}
`
	cfg, _, diags := Parse("cluster.hcl", []byte(src))
	if diags.HasErrors() || cfg.App("web").Ready.Check != ReadyTCP {
		t.Fatalf("diags %v", diags)
	}
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, `"tcp" (the default for an app with a proxy listener)`) {
		t.Errorf("diags = %v", diags)
	}
}

// TestWatchIgnoreAsUp checks that check refuses the ignore patterns that
// watch refuses when up starts it, not only the bad globs, each at its
// place in the file.
func TestWatchIgnoreAsUp(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cluster.hcl")
	src := []byte(`app "web" {
  command = ["./web"]
  watch {
    paths  = ["src"]
    ignore = ["a//b", "./", "ok/", "/", "[a-"]
  }
}
`)
	_, _, diags := Parse(path, src)
	type at struct {
		col    int
		detail string
	}
	var got []at
	for _, d := range diags {
		if d.Summary != "Invalid ignore pattern" || d.Subject == nil {
			t.Errorf("unexpected diagnostic: %s", d)
			continue
		}
		if d.Subject.Filename != path || d.Subject.Start.Line != 5 {
			t.Errorf("%s: at %s, want line 5 of %s", d.Detail, d.Subject, path)
		}
		got = append(got, at{d.Subject.Start.Column, d.Detail})
	}
	want := []struct {
		col  int
		text string
	}{
		{15, `The pattern "a//b" cannot be used: empty path segment.`},
		{23, `The pattern "./" cannot be used: it names no path.`},
		{36, `The pattern "/" cannot be used: it names no path.`},
		{41, `The pattern "[a-" is not a valid glob`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d diagnostics %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].col != w.col || !strings.HasPrefix(got[i].detail, w.text) {
			t.Errorf("diagnostic %d: column %d, %q; want column %d, %q...", i, got[i].col, got[i].detail, w.col, w.text)
		}
	}
}

func TestHTTPListener(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, diags := mustLoad(t, "testdata/valid/http.hcl")
	if len(diags) != 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	web := cfg.Listener("web")
	want := HTTPOptions{MaxHeaderSize: DefaultMaxHeaderSize, HeaderTimeout: DefaultHeaderTimeout, IdleTimeout: DefaultIdleTimeout,
		Timeout: DefaultHTTPTimeout, MaxRetryBody: DefaultMaxRetryBody}
	if web.Mode != HTTP || !web.Mode.Proxied() || web.Balance != BalanceLeastRequests || web.HTTP == nil || !reflect.DeepEqual(*web.HTTP, want) {
		t.Errorf("web = %+v, %+v; want the http defaults %+v", web, web.HTTP, want)
	}
	chat := cfg.Listener("chat")
	want = HTTPOptions{StickyCookie: "io_node", TrustedProxies: []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32"},
		AccessLog: true, MaxHeaderSize: 16 << 10, HeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, Timeout: 30 * time.Second}
	if chat.Balance != BalanceIPHash || chat.MaxConnections != 1000 || chat.MaxPerInstance != 16 || chat.QueueTimeout != 3*time.Second ||
		chat.HTTP == nil || !reflect.DeepEqual(*chat.HTTP, want) {
		t.Errorf("chat = %+v, %+v; want %+v", chat, chat.HTTP, want)
	}
	if a := cfg.App("chat"); a.Ready.Check != ReadyTCP {
		t.Errorf("chat ready = %+v, want the tcp default of a proxied app", a.Ready)
	}
	for _, l := range cfg.Listeners {
		if l.Mode != HTTP && l.HTTP != nil {
			t.Errorf("%s: HTTP options outside http mode", l.Name)
		}
	}
}
