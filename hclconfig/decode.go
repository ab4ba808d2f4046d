package hclconfig

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/signals"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
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
	Apps      []*rawApp      `hcl:"app,block"`
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
}

// appSource remembers, for the validate step, where each part of an App
// was written and what the resolved value cannot say (instances = "max").
type appSource struct {
	raw          *rawApp
	listeners    []stringItem
	dependsOn    []stringItem
	instancesMax bool
	checkExpr    hcl.Expression // nil when the ready block or check is absent
	pathSet      bool
	delaySet     bool
	delayExpr    hcl.Expression
	// backoff and max_backoff, when written, for the backoff order check.
	backoffExpr    hcl.Expression
	maxBackoffExpr hcl.Expression
}

type listenerSource struct {
	raw *rawListener
	// host and port of a tcp listener, for the overlap check.
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

// maxInstances bounds instances: a slip such as 40000 for 4 would otherwise
// start processes until the machine falls over.
const maxInstances = 4096

// decodeListener resolves one listener block. Values that fail keep their
// defaults so later checks see a plausible listener and do not pile on.
func decodeListener(e *evaluator, r *rawListener, dir string, srcs *sources) (*Listener, *listenerSource) {
	l := &Listener{Name: r.Name, Mode: Shared, DefRange: r.DefRange}
	src := &listenerSource{raw: r}

	decodeAddress(e, r, dir, srcs, l, src)

	if m, ok := e.str(r.Mode, "mode"); ok {
		switch Mode(m) {
		case Shared, ReusePort:
			l.Mode = Mode(m)
		case Proxy:
			e.errorf(r.Mode, "Proxy mode is not implemented",
				"Listener mode \"proxy\" is not implemented in this version of clusterrun. Use \"shared\" (every instance accepts on one socket) or \"reuseport\" (one SO_REUSEPORT socket per instance).")
		default:
			e.errorf(r.Mode, "Invalid listener mode", "The mode %q is not known. Use \"shared\" (the default), \"reuseport\" or \"proxy\".%s", m, didYouMean(m, "shared", "reuseport", "proxy"))
		}
	}

	if n, ok := e.integer(r.Backlog, "Invalid backlog", "backlog", "a whole number of at least 0 (0 keeps the kernel default)", 0, 1<<31-1); ok {
		l.Backlog = n
	}
	if b, ok := e.boolean(r.NonBlocking, "nonblocking"); ok {
		l.NonBlocking = b
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
		Reload:   Reload{Parallel: 1},
		DefRange: def,
	}
	for k, v := range globalEnv {
		a.Env[k] = v
	}
	return a
}

// decodeApp resolves one app block. globalEnv is the top-level env_file
// overlaid with the top-level env; the app's own layers go on top of it.
func decodeApp(e *evaluator, r *rawApp, dir string, globalEnv map[string]string, srcs *sources) (*App, *appSource) {
	a := newApp(r.Name, dir, globalEnv, r.DefRange)
	src := &appSource{raw: r}

	decodeCommand(e, r, a, srcs)

	if d, ok := e.str(r.Dir, "dir"); ok {
		switch {
		case d == "":
			e.errorf(r.Dir, "Invalid dir", "The dir is empty. Leave it out to run in the config file's directory, or give a path.")
		case strings.HasPrefix(d, "~"):
			e.errorf(r.Dir, "Invalid dir", "The dir %q starts with \"~\", which is not expanded here: a relative dir is relative to the config file. For the home directory write \"${env.HOME}%s\".", d, strings.TrimPrefix(d, "~"))
		default:
			a.Dir = resolvePath(dir, d)
		}
	}

	decodeInstances(e, r.Instances, a, src)

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
		m, diags := readEnvFiles(items, dir)
		e.diags = append(e.diags, diags...)
		for k, v := range m {
			a.Env[k] = v
		}
	}
	// The entries that were fine are kept even when others were not, so
	// that a check needing PORT does not also fail over an unrelated typo.
	items, _ := e.envMap(r.Env, "env")
	for _, it := range items {
		a.Env[it.key] = it.val
	}

	for _, acct := range []struct {
		expr hcl.Expression
		name string
		dst  *string
	}{{r.User, "user", &a.User}, {r.Group, "group", &a.Group}} {
		if s, ok := e.str(acct.expr, acct.name); ok {
			if s == "" {
				e.errorf(acct.expr, "Invalid "+acct.name, "The %s is empty. Leave it out to run as the runner's own %s, or give a name or a numeric id.", acct.name, acct.name)
			} else {
				*acct.dst = s
			}
		}
	}

	if b, ok := e.boolean(r.Required, "required"); ok {
		a.Required = b
	}

	if r.Ready != nil {
		decodeReady(e, r.Ready, a, src)
	}
	if r.Restart != nil {
		decodeRestart(e, r.Restart, a, src)
	}
	if r.Stop != nil {
		decodeStop(e, r.Stop, a)
	}
	if r.Reload != nil {
		if n, ok := e.integer(r.Reload.Parallel, "Invalid parallel", "reload parallel", "a whole number of at least 1 (the instances replaced at a time)", 1, maxInstances); ok {
			a.Reload.Parallel = n
		}
	}
	return a, src
}

func decodeCommand(e *evaluator, r *rawApp, a *App, srcs *sources) {
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
		a.Command = []string{"/bin/sh", "-c", s}
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
	for _, it := range items {
		if strings.ContainsRune(it.val, 0) {
			e.diags = append(e.diags, it.errorf("Invalid command", "This argument contains a NUL byte, which no program argument can hold."))
			return
		}
		a.Command = append(a.Command, it.val)
	}
}

func decodeInstances(e *evaluator, expr hcl.Expression, a *App, src *appSource) {
	const rule = `a whole number from 1 to 4096, or "max" for one instance per CPU`
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return
	}
	if s, isStr := toString(v); isStr && !isNumber(s) {
		if s == "max" {
			a.Instances = runtime.NumCPU()
			src.instancesMax = true
			return
		}
		e.errorf(expr, "Invalid instances", "The instances must be %s, but this is %s.%s", rule, shown(v), didYouMean(s, "max"))
		return
	}
	if n, ok := e.wholeNumber(expr, v, "Invalid instances", "instances", rule, 1, maxInstances); ok {
		a.Instances = n
	}
}

func decodeReady(e *evaluator, r *rawReady, a *App, src *appSource) {
	if c, ok := e.str(r.Check, "check"); ok {
		switch ReadyCheck(c) {
		case ReadyNotify, ReadyTCP, ReadyHTTP, ReadyDelay:
			a.Ready.Check = ReadyCheck(c)
			src.checkExpr = r.Check
		default:
			e.errorf(r.Check, "Invalid ready check", "The check %q is not known. Use \"notify\" (the app sends READY=1 on NOTIFY_SOCKET), \"tcp\", \"http\" or \"delay\" (the default).%s", c, didYouMean(c, "notify", "tcp", "http", "delay"))
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
