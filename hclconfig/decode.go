package hclconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/watch"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
)

// The raw structs are the schema: gohcl checks block and attribute names
// against them (so a typo is "Unsupported argument ... Did you mean") and the
// pointer blocks give "Duplicate ready block". There is no remain field, so
// the schema is closed. Attributes are hcl.Expression and are evaluated by
// the evaluator, which knows each attribute's units and allowed values.

type rawFile struct {
	EnvFile   hcl.Expression `hcl:"env_file,optional"`
	Env       hcl.Expression `hcl:"env,optional"`
	Listeners []*rawListener `hcl:"listener,block"`
	Metrics   *rawMetrics    `hcl:"metrics,block"`
	Control   *rawControl    `hcl:"control,block"`
	Apps      []*rawApp      `hcl:"app,block"`
}

type rawMetrics struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Body     hcl.Body       `hcl:",body"`
	Address  hcl.Expression `hcl:"address,optional"`
}

type rawControl struct {
	DefRange          hcl.Range      `hcl:",def_range"`
	Address           hcl.Expression `hcl:"address,optional"`
	TokenFile         hcl.Expression `hcl:"token_file,optional"`
	ReadOnlyTokenFile hcl.Expression `hcl:"read_only_token_file,optional"`
}

type rawListener struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	DefRange    hcl.Range      `hcl:",def_range"`
	Body        hcl.Body       `hcl:",body"`
	Address     hcl.Expression `hcl:"address,optional"`
	Mode        hcl.Expression `hcl:"mode,optional"`
	Backlog     hcl.Expression `hcl:"backlog,optional"`
	NonBlocking hcl.Expression `hcl:"nonblocking,optional"`
	Balance     hcl.Expression `hcl:"balance,optional"`
	MaxConns    hcl.Expression `hcl:"max_connections,optional"`
	MaxPerInst  hcl.Expression `hcl:"max_connections_per_instance,optional"`
	QueueTime   hcl.Expression `hcl:"queue_timeout,optional"`
	// http mode only (httplistener.go).
	Sticky         *rawSticky     `hcl:"sticky,block"`
	TrustedProxies hcl.Expression `hcl:"trusted_proxies,optional"`
	AccessLog      hcl.Expression `hcl:"access_log,optional"`
	MaxHeaderSize  hcl.Expression `hcl:"max_header_size,optional"`
	HeaderTimeout  hcl.Expression `hcl:"header_timeout,optional"`
	IdleTimeout    hcl.Expression `hcl:"idle_timeout,optional"`
	Timeout        hcl.Expression `hcl:"timeout,optional"`
	MaxRetryBody   hcl.Expression `hcl:"max_retry_body,optional"`
}

type rawApp struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	DefRange  hcl.Range      `hcl:",def_range"`
	Body      hcl.Body       `hcl:",body"`
	Command   hcl.Expression `hcl:"command,optional"`
	Dir       hcl.Expression `hcl:"dir,optional"`
	Instances hcl.Expression `hcl:"instances,optional"`
	Listeners hcl.Expression `hcl:"listeners,optional"`
	Env       hcl.Expression `hcl:"env,optional"`
	EnvFile   hcl.Expression `hcl:"env_file,optional"`
	User      hcl.Expression `hcl:"user,optional"`
	Group     hcl.Expression `hcl:"group,optional"`
	DependsOn hcl.Expression `hcl:"depends_on,optional"`
	Required  hcl.Expression `hcl:"required,optional"`
	Ready     *rawReady      `hcl:"ready,block"`
	Health    *rawHealth     `hcl:"health,block"`
	Watch     *rawWatch      `hcl:"watch,block"`
	Restart   *rawRestart    `hcl:"restart,block"`
	Stop      *rawStop       `hcl:"stop,block"`
	Reload    *rawReload     `hcl:"reload,block"`
}

type rawReady struct {
	Check   hcl.Expression `hcl:"check,optional"`
	Path    hcl.Expression `hcl:"path,optional"`
	Delay   hcl.Expression `hcl:"delay,optional"`
	Timeout hcl.Expression `hcl:"timeout,optional"`
}

type rawHealth struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Body     hcl.Body       `hcl:",body"`
	Check    hcl.Expression `hcl:"check,optional"`
	Path     hcl.Expression `hcl:"path,optional"`
	Interval hcl.Expression `hcl:"interval,optional"`
	Timeout  hcl.Expression `hcl:"timeout,optional"`
	Failures hcl.Expression `hcl:"failures,optional"`
}

type rawWatch struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Body     hcl.Body       `hcl:",body"`
	Paths    hcl.Expression `hcl:"paths,optional"`
	Ignore   hcl.Expression `hcl:"ignore,optional"`
}

type rawRestart struct {
	Policy      hcl.Expression `hcl:"policy,optional"`
	Backoff     hcl.Expression `hcl:"backoff,optional"`
	MaxBackoff  hcl.Expression `hcl:"max_backoff,optional"`
	MinUptime   hcl.Expression `hcl:"min_uptime,optional"`
	MaxRestarts hcl.Expression `hcl:"max_restarts,optional"`
	Window      hcl.Expression `hcl:"window,optional"`
	MaxMemory   hcl.Expression `hcl:"max_memory,optional"`
}

type rawStop struct {
	Signal  hcl.Expression `hcl:"signal,optional"`
	Timeout hcl.Expression `hcl:"timeout,optional"`
}

type rawReload struct {
	Parallel hcl.Expression `hcl:"parallel,optional"`
	Order    hcl.Expression `hcl:"order,optional"`
}

// appSource remembers, for the validate step, where each part of an App
// was written.
type appSource struct {
	raw       *rawApp
	listeners []stringItem
	dependsOn []stringItem
	checkExpr hcl.Expression // nil when the ready block or check is absent
	pathSet   bool
	delaySet  bool
	delayExpr hcl.Expression
	// healthCheckExpr is the health block's check, when it was valid.
	healthCheckExpr hcl.Expression
	// backoff and max_backoff, when written, for the backoff order check.
	backoffExpr    hcl.Expression
	maxBackoffExpr hcl.Expression
}

type listenerSource struct {
	raw *rawListener
	// host and port of a tcp listener, for the overlap check.
	host, port string
}

// metricsSource is where the metrics block was written.
type metricsSource struct {
	raw        *rawMetrics
	host, port string
}

const defaultStopSignal = syscall.SIGTERM

// resolvePath makes p absolute: relative paths are relative to the config
// file's directory, not the cwd, so a file means the same from anywhere.
func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// MaxInstances bounds instances, and clusterrun scale: a slip such as
// 40000 for 4 would otherwise start processes until the machine falls over.
const MaxInstances = 4096

// decodeListener resolves one listener block. Values that fail keep their
// defaults so later checks see a plausible listener and do not pile on.
func decodeListener(e *evaluator, r *rawListener, dir string, srcs *sources) (*Listener, *listenerSource) {
	l := &Listener{Name: r.Name, Mode: Shared, DefRange: r.DefRange, AddressRange: r.DefRange}
	if !absent(r.Address) {
		l.AddressRange = r.Address.Range()
	}
	src := &listenerSource{raw: r}

	decodeAddress(e, r, dir, srcs, l, src)

	modeOK := true
	if m, ok := e.str(r.Mode, "mode"); ok {
		switch Mode(m) {
		case Shared, ReusePort, Proxy, HTTP:
			l.Mode = Mode(m)
		default:
			modeOK = false
			e.errorf(r.Mode, "Invalid listener mode", "The mode %q is not known. Use \"shared\" (the default), \"reuseport\", \"proxy\" or \"http\".%s", m, didYouMean(m, "shared", "reuseport", "proxy", "http"))
		}
	} else if !absent(r.Mode) {
		modeOK = false
	}
	switch l.Mode {
	case Proxy:
		l.Balance = BalanceLeastConn
	case HTTP:
		l.Balance = BalanceLeastRequests
	}
	if b, ok := e.str(r.Balance, "balance"); ok {
		// Each routing mode names its least-loaded choice by what it sees:
		// connections in proxy mode, requests in http mode.
		least, other := BalanceLeastConn, BalanceLeastRequests
		if l.Mode == HTTP {
			least, other = other, least
		}
		switch {
		case Balance(b) == other && l.Mode.Proxied():
			e.errorf(r.Balance, "Invalid balance", "The balance %q is not one of mode %q. Use %q (the default: the ready instance with the fewest open %s), \"round-robin\" or \"ip-hash\".", b, l.Mode, least, map[bool]string{true: "requests", false: "connections"}[l.Mode == HTTP])
		case Balance(b) != BalanceLeastConn && Balance(b) != BalanceLeastRequests && Balance(b) != BalanceRoundRobin && Balance(b) != BalanceIPHash:
			e.errorf(r.Balance, "Invalid balance", "The balance %q is not known. Use %q (the default: the ready instance with the fewest open %s), \"round-robin\" or \"ip-hash\" (each client address keeps its instance).%s", b, least, map[bool]string{true: "requests", false: "connections"}[l.Mode == HTTP], didYouMean(b, string(least), "round-robin", "ip-hash"))
		case !l.Mode.Proxied() && modeOK:
			e.errorf(r.Balance, "Balance needs proxy mode",
				"Listener %q sets balance, but its mode is %q, where the kernel hands each connection to whichever instance accepts first; only the runner can balance. Set mode = \"proxy\" or \"http\", or remove balance.", r.Name, l.Mode)
		case Balance(b) == BalanceIPHash && l.Network == "unix":
			e.errorf(r.Balance, "ip-hash needs a TCP listener",
				"Listener %q is a unix socket, whose clients have no address to hash: every one would go to the same instance. Use %q or \"round-robin\".", r.Name, least)
		case l.Mode.Proxied():
			l.Balance = Balance(b)
		}
	}
	for _, a := range []struct {
		expr hcl.Expression
		name string
	}{{r.MaxConns, "max_connections"}, {r.MaxPerInst, "max_connections_per_instance"}, {r.QueueTime, "queue_timeout"}} {
		if !absent(a.expr) && !l.Mode.Proxied() && modeOK {
			e.errorf(a.expr, "Option needs proxy mode",
				"Listener %q sets %s, but its mode is %q, where the kernel queues connections for the instances; only the runner holds them in proxy and http modes. Set mode = \"proxy\" or \"http\", or remove %s.", r.Name, a.name, l.Mode, a.name)
		}
	}
	if n, ok := e.integer(r.MaxConns, "Invalid max_connections", "max_connections", "a whole number of at least 1 (client connections open at once; leave it out for a share of the runner's descriptor limit)", 1, 1<<31-1); ok && l.Mode.Proxied() {
		l.MaxConnections = n
	}
	if n, ok := e.integer(r.MaxPerInst, "Invalid max_connections_per_instance", "max_connections_per_instance", "a whole number of at least 1 (connections forwarded to one instance at once; leave it out for no fixed bound)", 1, 1<<31-1); ok && l.Mode.Proxied() {
		l.MaxPerInstance = n
	}
	if d, ok := e.duration(r.QueueTime, "queue_timeout", positive); ok && l.Mode.Proxied() {
		l.QueueTimeout = d
	}
	decodeHTTP(e, r, l, modeOK)

	if n, ok := e.integer(r.Backlog, "Invalid backlog", "backlog", "a whole number of at least 0 (0 keeps the kernel default)", 0, 1<<31-1); ok {
		l.Backlog = n
	}
	if b, ok := e.boolean(r.NonBlocking, "nonblocking"); ok {
		l.NonBlocking = b
	}
	if l.Network == NetworkSystemd {
		if l.Mode == ReusePort && modeOK {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Reuseport with one socket",
				Detail:   fmt.Sprintf("Listener %q takes its socket from systemd (%q), which is one socket, not one per instance as mode \"reuseport\" binds them: every instance shares it, as in mode \"shared\". Write mode = \"shared\" to say so.", r.Name, "systemd:"+l.Address),
				Subject:  r.Mode.Range().Ptr(),
			})
		}
		for _, a := range []struct {
			expr       hcl.Expression
			name, unit string
		}{{r.Backlog, "backlog", "Backlog="}, {r.NonBlocking, "nonblocking", "NonBlocking="}} {
			if !absent(a.expr) {
				e.diags = append(e.diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  "Option of a socket from systemd",
					Detail:   fmt.Sprintf("Listener %q takes its socket from systemd, which sets its options: clusterrun leaves %s as the socket unit's %s made it (a socket passed to instances never changes its options under them). Set %s in the .socket unit instead.", r.Name, a.name, a.unit, a.unit),
					Subject:  a.expr.Range().Ptr(),
				})
			}
		}
	}
	return l, src
}

func decodeAddress(e *evaluator, r *rawListener, dir string, srcs *sources, l *Listener, src *listenerSource) {
	if absent(r.Address) {
		if !srcs.suggested(r.Body, "address") {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing listener address",
				Detail:   fmt.Sprintf("Listener %q has no address. Set address to \"host:port\" (such as \"0.0.0.0:8080\"), \":0\" for a random port, or \"unix:/path/to.sock\".", r.Name),
				Subject:  r.DefRange.Ptr(),
			})
		}
		return
	}
	addr, ok := e.str(r.Address, "address")
	if !ok {
		return
	}
	network, address, err := parseAddress(addr, dir)
	if err != nil {
		e.errorf(r.Address, "Invalid listener address", "%s", err)
		return
	}
	l.Network, l.Address = network, address
	if network == "tcp" {
		src.host, src.port, _ = splitHostPort(address)
	}
}

// newApp returns an app with every default filled in and globalEnv copied
// into its Env.
func newApp(name, dir string, globalEnv map[string]string, def hcl.Range) *App {
	a := &App{
		Name:      name,
		Dir:       dir,
		Instances: 1,
		Env:       make(map[string]string, len(globalEnv)),
		Ready:     Ready{Check: ReadyDelay, Delay: DefaultReadyDelay, Timeout: DefaultReadyTimeout},
		Restart: Restart{
			Policy:      RestartOnFailure,
			Backoff:     DefaultBackoff,
			MaxBackoff:  DefaultMaxBackoff,
			MinUptime:   DefaultMinUptime,
			MaxRestarts: DefaultMaxRestarts,
			Window:      DefaultWindow,
		},
		Stop:     Stop{Signal: defaultStopSignal, Timeout: DefaultStopTimeout},
		Reload:   Reload{Parallel: 1, Order: OrderStartFirst},
		DefRange: def,
	}
	for k, v := range globalEnv {
		a.Env[k] = v
	}
	return a
}

// globals is what every app inherits from the top level of the file.
type globals struct {
	env      map[string]string
	envFiles []string // absolute paths of the top-level env_file entries
}

// decodeApp resolves one app block. The app's own layers go on top of the
// global env_file and env.
func decodeApp(e *evaluator, r *rawApp, dir string, g globals, envs *envReader, srcs *sources) (*App, *appSource) {
	a := newApp(r.Name, dir, nil, r.DefRange)
	src := &appSource{raw: r}
	a.At.Command = r.DefRange
	if d, ok := envs.charge(len(g.env)+len(g.envFiles), r.Name, r.DefRange); !ok {
		if d != nil {
			e.diags = append(e.diags, d)
		}
	} else {
		for k, v := range g.env {
			a.Env[k] = v
		}
		a.EnvFiles = append(a.EnvFiles, g.envFiles...)
	}

	decodeCommand(e, r, a, src, srcs)

	d, ok := e.str(r.Dir, "dir")
	a.At.DirUnknown = !ok && !absent(r.Dir)
	if ok {
		switch {
		case d == "":
			e.errorf(r.Dir, "Invalid dir", "The dir is empty. Leave it out to run in the config file's directory, or give a path.")
		case strings.HasPrefix(d, "~"):
			e.errorf(r.Dir, "Invalid dir", "The dir %q starts with \"~\", which is not expanded here: a relative dir is relative to the config file. For the home directory write \"${env.HOME}%s\".", d, strings.TrimPrefix(d, "~"))
		default:
			a.Dir = resolvePath(dir, d)
			a.At.Dir = r.Dir.Range().Ptr()
		}
		a.At.DirUnknown = a.At.Dir == nil
	}

	decodeInstances(e, r.Instances, a)

	if items, ok := e.stringList(r.Listeners, "listeners"); ok {
		src.listeners = items
		for _, it := range items {
			a.Listeners = append(a.Listeners, it.val)
		}
	} else if !absent(r.Listeners) {
		srcs.listenersUnknown = true
	}
	if items, ok := e.stringList(r.DependsOn, "depends_on"); ok {
		src.dependsOn = items
		for _, it := range items {
			a.DependsOn = append(a.DependsOn, it.val)
		}
	}

	// Layer order: global env_file < global env (both already in a.Env)
	// < app env_file < app env.
	if items, ok := e.stringList(r.EnvFile, "env_file"); ok {
		m, paths, diags := envs.read(items, r.Name)
		e.diags = append(e.diags, diags...)
		for _, it := range items {
			a.Written.EnvFiles = append(a.Written.EnvFiles, it.val)
		}
		if d, ok := envs.charge(len(m)+len(paths), r.Name, r.EnvFile.Range()); !ok {
			if d != nil {
				e.diags = append(e.diags, d)
			}
		} else {
			for k, v := range m {
				a.Env[k] = v
			}
			a.EnvFiles = append(a.EnvFiles, paths...)
		}
	}
	// The entries that were fine are kept even when others were not, so
	// that a check needing PORT does not also fail over an unrelated typo.
	items, _ := e.envMap(r.Env, "env")
	for _, it := range items {
		a.Env[it.key] = it.val
	}
	a.Written.Env = writtenVars(items, srcs.src)

	for _, acct := range []struct {
		expr hcl.Expression
		name string
		dst  *string
		at   **hcl.Range
	}{{r.User, "user", &a.User, &a.At.User}, {r.Group, "group", &a.Group, &a.At.Group}} {
		if s, ok := e.str(acct.expr, acct.name); ok {
			if s == "" {
				e.errorf(acct.expr, "Invalid "+acct.name, "The %s is empty. Leave it out to run as the runner's own %s, or give a name or a numeric id.", acct.name, acct.name)
			} else {
				*acct.dst = s
				*acct.at = acct.expr.Range().Ptr()
			}
		}
	}

	if b, ok := e.boolean(r.Required, "required"); ok {
		a.Required = b
	}

	if r.Ready != nil {
		decodeReady(e, r.Ready, a, src)
	}
	if r.Health != nil {
		decodeHealth(e, r.Health, a, src, srcs)
	}
	if r.Watch != nil {
		decodeWatch(e, r.Watch, dir, a, srcs)
	}
	if r.Restart != nil {
		decodeRestart(e, r.Restart, a, src)
	}
	if r.Stop != nil {
		decodeStop(e, r.Stop, a)
	}
	if r.Reload != nil {
		if n, ok := e.integer(r.Reload.Parallel, "Invalid parallel", "reload parallel", "a whole number of at least 1 (the instances replaced at a time)", 1, MaxInstances); ok {
			a.Reload.Parallel = n
		}
		if o, ok := e.str(r.Reload.Order, "order"); ok {
			switch ReloadOrder(o) {
			case OrderStartFirst, OrderStopFirst:
				a.Reload.Order = ReloadOrder(o)
			default:
				e.errorf(r.Reload.Order, "Invalid reload order", "The order %q is not known. Use \"start-first\" (the default: the new instance is ready before the old one stops) or \"stop-first\" (the old instance stops first, for an app that binds a fixed port itself).%s", o, didYouMean(o, "start-first", "stop-first"))
			}
		}
	}
	return a, src
}

func decodeCommand(e *evaluator, r *rawApp, a *App, src *appSource, srcs *sources) {
	const allowed = `Write a list to run a program directly, such as ["node", "server.js"], or a string to run it through /bin/sh -c, such as "bundle exec puma".`
	if absent(r.Command) {
		if srcs.suggested(r.Body, "command") {
			return
		}
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing command",
			Detail:   fmt.Sprintf("App %q has no command. %s", r.Name, allowed),
			Subject:  r.DefRange.Ptr(),
		})
		return
	}
	a.At.Command = r.Command.Range()
	v, ok := e.value(r.Command)
	if !ok {
		return
	}
	if s, isStr := toString(v); isStr {
		if strings.TrimSpace(s) == "" {
			e.errorf(r.Command, "Invalid command", "The command is empty. %s", allowed)
			return
		}
		if strings.ContainsRune(s, 0) {
			e.errorf(r.Command, "Invalid command", "The command contains a NUL byte, which no program argument can hold.")
			return
		}
		a.Command = shellCommand(s)
		a.Written.CommandString = s
		return
	}
	items, ok := e.stringList(r.Command, "command")
	if !ok {
		return
	}
	if len(items) == 0 {
		e.errorf(r.Command, "Invalid command", "The command is an empty list. %s", allowed)
		return
	}
	if items[0].val == "" {
		e.diags = append(e.diags, items[0].errorf("Invalid command", "The first element of command is the program to run, and it is empty."))
		return
	}
	a.At.Command = items[0].rng()
	for _, it := range items {
		if strings.ContainsRune(it.val, 0) {
			e.diags = append(e.diags, it.errorf("Invalid command", "This argument contains a NUL byte, which no program argument can hold."))
			a.Command = nil
			return
		}
		a.Command = append(a.Command, it.val)
	}
	a.Written.Command = append([]string(nil), a.Command...)
}

// shellCommand is the argv that runs the command string s.
func shellCommand(s string) []string {
	form, _ := execForm(s)
	return []string{"/bin/sh", "-c", form}
}

func decodeInstances(e *evaluator, expr hcl.Expression, a *App) {
	const rule = `a whole number from 1 to 4096, or "max" for one instance per CPU`
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return
	}
	if v.Type() == cty.String && !isNumber(v.AsString()) {
		s := v.AsString()
		if s == "max" {
			a.Instances = runtime.NumCPU()
			a.Written.Instances = "max"
			return
		}
		e.errorf(expr, "Invalid instances", "The instances must be %s, but this is %s.%s", rule, shown(v), didYouMean(s, "max"))
		return
	}
	if n, ok := e.wholeNumber(expr, v, "Invalid instances", "instances", rule, 1, MaxInstances); ok {
		a.Instances = n
		a.Written.Instances = strconv.Itoa(n)
	}
}

func decodeReady(e *evaluator, r *rawReady, a *App, src *appSource) {
	if c, ok := e.str(r.Check, "check"); ok {
		switch ReadyCheck(c) {
		case ReadyNotify, ReadyTCP, ReadyHTTP, ReadyDelay, ReadyExit:
			a.Ready.Check = ReadyCheck(c)
			src.checkExpr = r.Check
		default:
			e.errorf(r.Check, "Invalid ready check", "The check %q is not known. Use \"notify\" (the app sends READY=1 on NOTIFY_SOCKET), \"tcp\", \"http\", \"delay\" (the default) or \"exit\" (a one-shot step, done once it exits 0).%s", c, didYouMean(c, "notify", "tcp", "http", "delay", "exit"))
		}
	}
	if p, ok := e.str(r.Path, "path"); ok {
		src.pathSet = true
		if !strings.HasPrefix(p, "/") {
			e.errorf(r.Path, "Invalid ready path", "The path %q does not start with \"/\". The http check requests this path on the instance's port, so write it as an absolute URL path, such as \"/healthz\".", p)
		} else {
			a.Ready.Path = p
		}
	}
	if a.Ready.Check == ReadyHTTP && a.Ready.Path == "" {
		a.Ready.Path = "/"
	}
	if d, ok := e.duration(r.Delay, "ready delay", nonNegative); ok {
		a.Ready.Delay = d
		src.delaySet = true
		src.delayExpr = r.Delay
	}
	if d, ok := e.duration(r.Timeout, "ready timeout", positive); ok {
		a.Ready.Timeout = d
	}
}

func decodeHealth(e *evaluator, r *rawHealth, a *App, src *appSource, srcs *sources) {
	h := Health{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}
	const checks = `Use "http" (GET path on the instance's private port must answer 2xx), "tcp" (the private port must accept a connection) or "watchdog" (the app sends WATCHDOG=1 on NOTIFY_SOCKET at least every interval).`
	if absent(r.Check) {
		if !srcs.suggested(r.Body, "check") {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing health check",
				Detail:   fmt.Sprintf("The health block of app %q has no check. %s Or remove the block: without it an instance is replaced only when it exits.", a.Name, checks),
				Subject:  r.DefRange.Ptr(),
			})
		}
	} else if c, ok := e.str(r.Check, "check"); ok {
		switch HealthCheck(c) {
		case HealthHTTP, HealthTCP, HealthWatchdog:
			h.Check = HealthCheck(c)
			src.healthCheckExpr = r.Check
		default:
			e.errorf(r.Check, "Invalid health check", "The check %q is not known. %s%s", c, checks, didYouMean(c, "http", "tcp", "watchdog"))
		}
	}
	if p, ok := e.str(r.Path, "path"); ok {
		switch {
		case !strings.HasPrefix(p, "/"):
			e.errorf(r.Path, "Invalid health path", "The path %q does not start with \"/\". The http check requests this path on the instance's private port, so write it as an absolute URL path, such as \"/healthz\".", p)
		case h.Check != HealthHTTP && h.Check != HealthNone:
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Health path is ignored",
				Detail:   fmt.Sprintf("App %q sets a health path, but its health check is %q and only check = \"http\" requests a path. Remove the path, or set check = \"http\".", a.Name, h.Check),
				Subject:  r.Path.Range().Ptr(),
			})
		default:
			h.Path = p
		}
	}
	if h.Check == HealthHTTP && h.Path == "" {
		h.Path = "/"
	}
	intervalOK, timeoutOK := true, true
	if d, ok := e.duration(r.Interval, "health interval", positive); ok {
		h.Interval = d
	} else if !absent(r.Interval) {
		intervalOK = false
	}
	if d, ok := e.duration(r.Timeout, "health timeout", positive); ok {
		h.Timeout = d
		if h.Check == HealthWatchdog {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Health timeout is ignored",
				Detail:   fmt.Sprintf("App %q sets a health timeout, but its check is \"watchdog\", which has no probe to time out: the instance must send WATCHDOG=1 at least every interval. Remove the timeout.", a.Name),
				Subject:  r.Timeout.Range().Ptr(),
			})
		}
	} else if !absent(r.Timeout) {
		timeoutOK = false
	}
	if (h.Check == HealthHTTP || h.Check == HealthTCP) && intervalOK && timeoutOK && h.Timeout >= h.Interval {
		subject := r.Timeout
		if absent(subject) {
			subject = r.Interval
		}
		e.errorf(subject, "Health timeout is not shorter than the interval",
			"App %q probes every %s and waits up to %s for an answer, so a probe could still be waiting when the next one is due. Make the timeout shorter than the interval (the defaults are %s and %s).", a.Name, h.Interval, h.Timeout, DefaultHealthInterval, DefaultHealthTimeout)
	}
	if n, ok := e.integer(r.Failures, "Invalid failures", "health failures", "a whole number from 1 to 1000 (the consecutive failed checks that replace an instance)", 1, 1000); ok {
		h.Failures = n
	}
	a.Health = h
}

func decodeWatch(e *evaluator, r *rawWatch, dir string, a *App, srcs *sources) {
	w := &Watch{}
	good := true
	switch {
	case absent(r.Paths):
		good = false
		if !srcs.suggested(r.Body, "paths") {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing watch paths",
				Detail:   fmt.Sprintf("The watch block of app %q has no paths. Set paths to the files or directories whose changes reload the app, such as paths = [\"src\"]; they are relative to the config file.", a.Name),
				Subject:  r.DefRange.Ptr(),
			})
		}
	default:
		items, ok := e.stringList(r.Paths, "paths")
		if !ok {
			good = false
			break
		}
		if len(items) == 0 {
			e.errorf(r.Paths, "Invalid watch paths", "The paths list is empty, so nothing would be watched. List the files or directories whose changes reload the app, such as [\"src\"], or remove the watch block.")
			good = false
		}
		for _, it := range items {
			switch {
			case it.val == "":
				e.diags = append(e.diags, it.errorf("Invalid watch path", "A watch path is empty. Give a file or directory, relative to the config file, such as \"src\"."))
			case strings.HasPrefix(it.val, "~"):
				e.diags = append(e.diags, it.errorf("Invalid watch path", fmt.Sprintf("The path %q starts with \"~\", which is not expanded here: a relative path is relative to the config file. For the home directory write \"${env.HOME}%s\".", it.val, strings.TrimPrefix(it.val, "~"))))
			case strings.ContainsRune(it.val, 0):
				e.diags = append(e.diags, it.errorf("Invalid watch path", "The path contains a NUL byte."))
			default:
				p := resolvePath(dir, it.val)
				if _, err := os.Stat(p); err != nil {
					detail := fmt.Sprintf("The path %q does not exist (looked for %s). Watch a file or directory that exists; relative paths are relative to the config file.", it.val, p)
					if !errors.Is(err, fs.ErrNotExist) {
						detail = fmt.Sprintf("Cannot watch %s: %s.", p, unwrapPathError(err))
					}
					e.diags = append(e.diags, it.errorf("Watch path not found", detail))
					good = false
					continue
				}
				w.Paths = append(w.Paths, p)
				continue
			}
			good = false
		}
	}
	if items, ok := e.stringList(r.Ignore, "ignore"); ok {
		for _, it := range items {
			if it.val == "" {
				e.diags = append(e.diags, it.errorf("Invalid ignore pattern", "An ignore pattern is empty. Give a glob such as \"**/*.log\" or a name such as \"node_modules\"."))
				good = false
				continue
			}
			// The checks watch makes when up starts it, so check refuses
			// what up would.
			if err := watch.CheckPattern(it.val); err != nil {
				detail := fmt.Sprintf("The pattern %q is not a valid glob: check its [...] classes and backslashes. Patterns use *, ? and [a-z] as in the shell, and ** for any number of directories, such as \"**/*.log\".", it.val)
				if !errors.Is(err, path.ErrBadPattern) {
					detail = fmt.Sprintf("The pattern %q cannot be used: %s. A leading \"/\" or \"./\" only anchors it at the watched directory and a trailing \"/\" is dropped; what is left must name a path with no empty segments, such as \"/dist\" or \"build/out\".", it.val, err)
				}
				e.diags = append(e.diags, it.errorf("Invalid ignore pattern", detail))
				good = false
				continue
			}
			w.Ignore = append(w.Ignore, it.val)
		}
	} else if !absent(r.Ignore) {
		good = false
	}
	if good {
		a.Watch = w
	}
}

// decodeMetrics resolves the metrics block.
func decodeMetrics(e *evaluator, r *rawMetrics, dir string, srcs *sources) *Metrics {
	m := &Metrics{DefRange: r.DefRange, AddressRange: r.DefRange}
	if !absent(r.Address) {
		m.AddressRange = r.Address.Range()
	}
	srcs.metrics = &metricsSource{raw: r}
	if absent(r.Address) {
		if !srcs.suggested(r.Body, "address") {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing metrics address",
				Detail:   "The metrics block has no address. Set address to the \"host:port\" Prometheus scrapes, such as \"127.0.0.1:9102\", or remove the block to turn metrics off.",
				Subject:  r.DefRange.Ptr(),
			})
		}
		return m
	}
	addr, ok := e.str(r.Address, "address")
	if !ok {
		return m
	}
	network, address, err := parseAddress(addr, dir)
	switch {
	case err != nil:
		e.errorf(r.Address, "Invalid metrics address", "%s", strings.Replace(err.Error(), `, or "unix:/path/to.sock"`, "", 1))
	case network == NetworkSystemd:
		e.errorf(r.Address, "Invalid metrics address", "The metrics address %q names a socket from systemd; clusterrun serves metrics on a socket it binds itself. Write \"host:port\", such as \"127.0.0.1:9102\".", addr)
	case network != "tcp":
		e.errorf(r.Address, "Invalid metrics address", "The metrics address %q is a unix socket, but Prometheus scrapes over TCP. Write \"host:port\", such as \"127.0.0.1:9102\".", addr)
	default:
		host, port, _ := splitHostPort(address)
		if port == "0" {
			e.errorf(r.Address, "Invalid metrics address", "The metrics address %q has port 0, a random port that Prometheus could not be told about. Give a fixed port, such as \"127.0.0.1:9102\".", addr)
			break
		}
		m.Address = address
		srcs.metrics.host, srcs.metrics.port = host, port
	}
	return m
}

// decodeControl resolves the control block: the API over TCP, which is
// served only with a token, so a block with an address and no token file
// is refused rather than served open.
func decodeControl(e *evaluator, r *rawControl, dir string) *Control {
	c := &Control{DefRange: r.DefRange}
	if !absent(r.TokenFile) {
		if p, ok := e.str(r.TokenFile, "token_file"); ok && p != "" {
			c.TokenFile = resolvePath(dir, p)
		}
	}
	if !absent(r.ReadOnlyTokenFile) {
		if p, ok := e.str(r.ReadOnlyTokenFile, "read_only_token_file"); ok && p != "" {
			c.ReadOnlyTokenFile = resolvePath(dir, p)
		}
	}
	if absent(r.Address) {
		return c
	}
	addr, ok := e.str(r.Address, "address")
	if !ok {
		return c
	}
	network, address, err := parseAddress(addr, dir)
	switch {
	case err != nil:
		e.errorf(r.Address, "Invalid control address", "%s", strings.Replace(err.Error(), `, or "unix:/path/to.sock"`, "", 1))
	case network == NetworkSystemd:
		e.errorf(r.Address, "Invalid control address", "The control address %q names a socket from systemd; clusterrun serves its API on a socket it binds itself. Write \"host:port\", such as \"127.0.0.1:7070\".", addr)
	case network != "tcp":
		e.errorf(r.Address, "Invalid control address", "The control address %q is a unix socket; the runner already serves the API on its own private unix socket. Write \"host:port\", such as \"127.0.0.1:7070\", to serve it over TCP too.", addr)
	case c.TokenFile == "" && c.ReadOnlyTokenFile == "":
		e.errorf(r.Address, "Control address without a token", "The API on %q would be open to anyone who can reach it. Set token_file (full control) or read_only_token_file (GET requests only) to a file holding a secret, such as the output of:\n  openssl rand -base64 32 > control.token", addr)
	default:
		c.Address = address
	}
	return c
}

func decodeRestart(e *evaluator, r *rawRestart, a *App, src *appSource) {
	if p, ok := e.str(r.Policy, "policy"); ok {
		switch RestartPolicy(p) {
		case RestartAlways, RestartOnFailure, RestartNever:
			a.Restart.Policy = RestartPolicy(p)
		default:
			e.errorf(r.Policy, "Invalid restart policy", "The policy %q is not known. Use \"always\", \"on-failure\" (the default) or \"never\".%s", p, didYouMean(p, "always", "on-failure", "never"))
		}
	}
	if d, ok := e.duration(r.Backoff, "restart backoff", nonNegative); ok {
		a.Restart.Backoff = d
		src.backoffExpr = r.Backoff
	}
	if d, ok := e.duration(r.MaxBackoff, "restart max_backoff", nonNegative); ok {
		a.Restart.MaxBackoff = d
		src.maxBackoffExpr = r.MaxBackoff
	}
	if d, ok := e.duration(r.MinUptime, "restart min_uptime", nonNegative); ok {
		a.Restart.MinUptime = d
	}
	if n, ok := e.integer(r.MaxRestarts, "Invalid max_restarts", "max_restarts", "a whole number of at least 0", 0, 1<<31-1); ok {
		a.Restart.MaxRestarts = n
	}
	if d, ok := e.duration(r.Window, "restart window", positive); ok {
		a.Restart.Window = d
	}
	if n, ok := e.size(r.MaxMemory, "max_memory"); ok {
		a.Restart.MaxMemory = n
	}
}

func decodeStop(e *evaluator, r *rawStop, a *App) {
	if s, ok := e.str(r.Signal, "signal"); ok {
		sig, err := signals.Parse(s)
		if err != nil {
			e.errorf(r.Signal, "Invalid stop signal", "The signal %q is not known. Valid signals are %s; the \"SIG\" prefix is optional.", s, strings.Join(signals.Names, ", "))
		} else {
			a.Stop.Signal = sig
		}
	}
	if d, ok := e.duration(r.Timeout, "stop timeout", positive); ok {
		a.Stop.Timeout = d
	}
}

// decodeBody runs gohcl over the file body: the schema check. Nothing is
// evaluated here, every attribute being an expression.
func decodeBody(body hcl.Body) (*rawFile, hcl.Diagnostics) {
	var raw rawFile
	diags := gohcl.DecodeBody(body, nil, &raw)
	return &raw, diags
}
