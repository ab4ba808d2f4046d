// Package hclconfig reads cluster.hcl (or a Procfile) into a validated,
// immutable Config. It never prints: every problem is returned as an
// hcl.Diagnostic with the position it is about, and main renders them.
package hclconfig

import (
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Config is one fully decoded and validated file. It is never mutated after
// Load returns; a reload loads a new one.
type Config struct {
	// Path is the absolute path of the file that was loaded.
	Path string
	// Dir is the directory that relative paths in the file resolve against.
	Dir string
	// Env is the global environment: the top-level env_file values overlaid
	// by the top-level env attribute. It does not include the runner's own
	// environment, which the runner adds under it when it starts an instance.
	Env map[string]string
	// Listeners are the listener blocks, in file order. A Procfile with a
	// web line gets one proxy listener named "web".
	Listeners []*Listener
	// Apps are the app blocks (or Procfile lines), in file order.
	Apps []*App
	// Metrics is the metrics block; nil when metrics are off.
	Metrics *Metrics
	// Control is the control block; nil when there is none (the API is
	// then served on the private unix socket only).
	Control *Control
	// Procfile is true when the file was a Procfile, not HCL.
	Procfile bool

	// WrittenEnv is the top-level env attribute as written, in source
	// order, for export and init; Env holds the resolved values.
	WrittenEnv []WrittenVar
	// WrittenEnvFiles are the top-level env_file entries as written, with
	// a leading "-" kept.
	WrittenEnvFiles []string
}

// Mode is how a listener's connections reach the instances.
type Mode string

const (
	// Shared: one socket, inherited by every instance.
	Shared Mode = "shared"
	// ReusePort: one SO_REUSEPORT socket per instance slot.
	ReusePort Mode = "reuseport"
	// Proxy: the runner accepts and forwards to each instance's private port.
	Proxy Mode = "proxy"
	// HTTP: the runner reads each HTTP/1.1 request and forwards it to a
	// ready instance's private port over connections it keeps open.
	HTTP Mode = "http"
)

// Proxied reports whether the runner accepts the listener's connections and
// forwards them to a private address per instance (proxy and http modes),
// rather than handing the instances the socket.
func (m Mode) Proxied() bool { return m == Proxy || m == HTTP }

// Balance is how a proxy listener picks the instance for a connection.
type Balance string

const (
	// BalanceLeastConn picks the ready instance with the fewest open
	// connections (the default).
	BalanceLeastConn Balance = "least-conn"
	// BalanceRoundRobin takes the ready instances in turn.
	BalanceRoundRobin Balance = "round-robin"
	// BalanceIPHash keeps each client address on one instance (consistent
	// hashing with a bound on load).
	BalanceIPHash Balance = "ip-hash"
	// BalanceLeastRequests picks the ready instance with the fewest
	// requests in flight (http mode's default; it sees requests, not
	// connections).
	BalanceLeastRequests Balance = "least-requests"
)

// DefaultQueueTimeout is how long a proxy listener's connection waits for
// an instance that can take it.
const DefaultQueueTimeout = 10 * time.Second

// Listener is one listener block.
type Listener struct {
	// Name is the block label; instances see it in LISTEN_FDNAMES.
	Name string
	// Network is "tcp", "unix", or NetworkSystemd.
	Network string
	// Address is "host:port" for tcp (":0" picks one random port shared by
	// every instance), an absolute path for unix, and the socket's
	// FileDescriptorName for NetworkSystemd.
	Address string
	Mode    Mode
	// Backlog is the listen(2) backlog; 0 leaves the kernel default.
	Backlog int
	// NonBlocking sets O_NONBLOCK on the socket handed to instances.
	NonBlocking bool
	// Balance is set in proxy mode (BalanceLeastConn unless written) and
	// http mode (BalanceLeastRequests unless written); it is "" for the
	// other modes, where the kernel picks the instance.
	Balance Balance
	// MaxConnections bounds the client connections a proxy listener holds
	// open at once (0: a share of the runner's descriptor limit);
	// MaxPerInstance those forwarded to one instance (0: no fixed bound);
	// QueueTimeout is how long a connection waits for an instance that can
	// take it (0: DefaultQueueTimeout). Proxy and http modes only.
	MaxConnections int
	MaxPerInstance int
	QueueTimeout   time.Duration
	// HTTP holds what only http mode has; nil in the other modes.
	HTTP *HTTPOptions
	// DefRange is where the block is defined, for messages about it;
	// AddressRange where its address was written (for a Procfile's web
	// listener, the line's name).
	DefRange     hcl.Range
	AddressRange hcl.Range
}

// Written is the address as the file writes it: "host:port",
// "unix:/path" or "systemd:NAME".
func (l *Listener) Written() string {
	if l.Network == "unix" || l.Network == NetworkSystemd {
		return l.Network + ":" + l.Address
	}
	return l.Address
}

// Metrics is the metrics block: where the runner serves Prometheus metrics.
type Metrics struct {
	// Address is "host:port" (tcp only, never port 0).
	Address string
	// DefRange is where the block is defined, AddressRange its address.
	DefRange     hcl.Range
	AddressRange hcl.Range
}

// Control is the control block: the HTTP API over TCP, besides the
// private unix socket every runner has.
type Control struct {
	// Address is "host:port" for the API over TCP, or "" for none. It is
	// set only together with a token file.
	Address string
	// TokenFile holds the bearer token that allows every request, and
	// ReadOnlyTokenFile the one that allows GET requests only; absolute
	// paths, or "".
	TokenFile, ReadOnlyTokenFile string
	// DefRange is where the block is defined.
	DefRange hcl.Range
}

// ReadyCheck is how the runner learns that a new instance can take traffic.
type ReadyCheck string

const (
	// ReadyNotify waits for READY=1 on NOTIFY_SOCKET.
	ReadyNotify ReadyCheck = "notify"
	// ReadyTCP waits until the instance's own port accepts a connection.
	ReadyTCP ReadyCheck = "tcp"
	// ReadyHTTP waits until GET path on the instance's own port answers 2xx.
	ReadyHTTP ReadyCheck = "http"
	// ReadyDelay counts the instance ready once it has stayed up for Delay.
	ReadyDelay ReadyCheck = "delay"
	// ReadyExit is for a one-shot step (a build, a migration): it is never
	// ready while it runs, and done once it exits 0, within Timeout; apps
	// that depend on it start then. Its exit 0 is never restarted.
	ReadyExit ReadyCheck = "exit"
)

// Ready is an app's ready block. Without one, an app with a proxy listener
// gets ReadyTCP (its private port answers = ready) and any other app
// ReadyDelay with DefaultReadyDelay.
type Ready struct {
	Check   ReadyCheck
	Path    string        // for http
	Delay   time.Duration // for delay
	Timeout time.Duration // not ready by then is a failed start
}

// HealthCheck is how the runner checks that a ready instance stays alive.
type HealthCheck string

const (
	// HealthNone: no health block, no liveness check.
	HealthNone HealthCheck = ""
	// HealthHTTP: GET Path on the instance's private address must answer 2xx.
	HealthHTTP HealthCheck = "http"
	// HealthTCP: the instance's private address must accept a connection.
	HealthTCP HealthCheck = "tcp"
	// HealthWatchdog: the instance must send WATCHDOG=1 at least every
	// Interval; it gets WATCHDOG_USEC as under systemd's WatchdogSec=.
	HealthWatchdog HealthCheck = "watchdog"
)

// Health is an app's health block. It is the zero Health (Check ==
// HealthNone) when the block is absent.
type Health struct {
	Check    HealthCheck
	Path     string        // http only; default "/"
	Interval time.Duration // default DefaultHealthInterval
	Timeout  time.Duration // default DefaultHealthTimeout
	// Failures is how many consecutive failures replace the instance
	// (a new one ready first); default DefaultHealthFailures, 1..1000.
	Failures int
}

// Watch is an app's watch block: a change under Paths, debounced, triggers
// the app's rolling reload.
type Watch struct {
	// Paths are absolute, resolved against the config file's directory;
	// there is at least one, and each existed when the file was loaded.
	Paths []string
	// Ignore are glob patterns as written ("**/*.log", "node_modules"),
	// each valid path.Match syntax.
	Ignore []string
}

// RestartPolicy says which exits are followed by a restart.
type RestartPolicy string

const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartNever     RestartPolicy = "never"
)

// Restart is an app's restart block.
type Restart struct {
	Policy RestartPolicy
	// Backoff is the delay before the first restart; it doubles with each
	// consecutive crash up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MinUptime: a run at least this long resets the consecutive-crash count.
	MinUptime time.Duration
	// MaxRestarts restarts are allowed within Window; the next crash gives up.
	MaxRestarts int
	Window      time.Duration
	// MaxMemory is an RSS limit in bytes; 0 means none.
	MaxMemory int64
}

// Stop is an app's stop block.
type Stop struct {
	Signal  syscall.Signal
	Timeout time.Duration
}

// ReloadOrder is the order of the two steps that replace one instance.
type ReloadOrder string

const (
	// OrderStartFirst starts the new instance, waits until it is ready,
	// then stops the old one (the default).
	OrderStartFirst ReloadOrder = "start-first"
	// OrderStopFirst stops the old instance before starting the new one,
	// for apps that bind a fixed port themselves.
	OrderStopFirst ReloadOrder = "stop-first"
)

// Reload is an app's reload block.
type Reload struct {
	// Parallel is how many instances are replaced at a time.
	Parallel int
	Order    ReloadOrder
}

// App is one app block (or one Procfile line).
type App struct {
	Name string
	// Command is the argv to exec. A command written as a string becomes
	// ["/bin/sh", "-c", string], with "exec " put in front of the program
	// when the string is one simple command (see ExecForm).
	Command []string
	// Dir is the absolute working directory.
	Dir       string
	Instances int
	// Listeners are the names of the listener blocks the app receives, in
	// the order given; they become fds 3, 4, ...
	Listeners []string
	// Env is the app's environment on top of the runner's own: global
	// env_file < global env < app env_file < app env.
	Env map[string]string
	// EnvFiles are the absolute paths of every env file Env comes from:
	// the global env_file entries, then the app's own, in order, optional
	// ones included (without their "-") whether or not they exist; for a
	// Procfile, the .env next to it. Watch mode reloads the app when one
	// changes.
	EnvFiles []string
	// User and Group, when set, are the account the instances run as.
	User  string
	Group string
	// DependsOn are apps that must be ready before this one starts.
	DependsOn []string
	Ready     Ready
	Health    Health
	// Watch is the watch block; nil when absent.
	Watch   *Watch
	Restart Restart
	Stop    Stop
	Reload  Reload
	// Required: if this app gives up, the whole runner drains and exits 1.
	Required bool
	// Port is the PORT a Procfile line without a runner-held listener was
	// assigned (foreman's base + 100*i; instance n gets Port+n). It is 0
	// for HCL apps and for a Procfile's web line, whose PORT comes from
	// their first listener (the private port in proxy mode).
	Port int
	// Written is what the file said, before defaults and resolution.
	Written Written
	// DefRange is where the block (or Procfile line) is defined.
	DefRange hcl.Range
	// At is where the values that depend on the machine were written,
	// for the checks against it (package preflight).
	At AppRanges
}

// AppRanges locates what an app asks of the machine. A range is nil when
// the value was not written, or could not be decoded: there is then
// nothing to check.
type AppRanges struct {
	// Command is where the program is named: the first element of a list,
	// the string, or a Procfile line's command.
	Command hcl.Range
	Dir     *hcl.Range
	User    *hcl.Range
	Group   *hcl.Range
	// DirUnknown: dir was written but could not be decoded, so where a
	// relative program is, is not known.
	DirUnknown bool
}

// Written keeps what the user wrote for an app beside the resolved values,
// for clusterrun export and init, which must render the file and not this
// machine ("max" stays "max", env.X stays a reference).
type Written struct {
	// Command is the command list as written (evaluated), or nil.
	Command []string
	// CommandString is the command string as written (for a Procfile, the
	// line's command), or "".
	CommandString string
	// Instances is "max", or the number as a decimal string; "" when the
	// attribute is absent (one instance).
	Instances string
	// Env is the app's own env attribute, in source order.
	Env []WrittenVar
	// EnvFiles are the app's env_file entries as written, with a leading
	// "-" kept.
	EnvFiles []string
}

// WrittenVar is one entry of an env attribute as written.
type WrittenVar struct {
	Name string
	// Value is the resolved value.
	Value string
	// Source is the expression's source text exactly as in the file, such
	// as `"info"`, `env.HOME` or `"${env.HOME}/x"`. When the env attribute
	// is not a literal map (merge(...), say), every entry's Source is the
	// whole attribute's expression.
	Source string
	// Literal is true when the expression is a constant: no variables and
	// no function calls.
	Literal bool
	// Refs are the names of the env.X variables the expression references
	// (env.X, env["X"], and lookup(env, "X", ...)), sorted and unique.
	Refs []string
}

// Defaults used where a block or attribute is absent.
const (
	DefaultReadyDelay     = time.Second
	DefaultReadyTimeout   = 30 * time.Second
	DefaultHealthInterval = 10 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthFailures = 3
	DefaultBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMinUptime      = time.Second
	DefaultMaxRestarts    = 10
	DefaultWindow         = 60 * time.Second
	DefaultStopTimeout    = 10 * time.Second
	DefaultProcfilePort   = 5000
)

// InstancePort is the PORT that instance index of a gets when no listener
// of the runner gives it one: a Procfile line's foreman port plus the
// index, else the port its env sets (the same for every instance); 0 when
// it has none. It is the one place that knows: the runner sets it, probes
// it, and check validates what relies on it.
func (a *App) InstancePort(index int) int {
	if a.Port != 0 {
		return a.Port + index
	}
	if p, err := strconv.Atoi(a.Env["PORT"]); err == nil && p > 0 && p <= 65535 {
		return p
	}
	return 0
}

// Listener returns the listener block called name, or nil.
func (c *Config) Listener(name string) *Listener {
	for _, l := range c.Listeners {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// App returns the app called name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}
