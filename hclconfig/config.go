// Package hclconfig reads cluster.hcl (or a Procfile) into a validated,
// immutable Config. It never prints: every problem is returned as an
// hcl.Diagnostic with the position it is about, and main renders them.
package hclconfig

import (
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
	// Listeners are the listener blocks, in file order.
	Listeners []*Listener
	// Apps are the app blocks (or Procfile lines), in file order.
	Apps []*App
	// Procfile is true when the file was a Procfile, not HCL.
	Procfile bool
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
)

// Listener is one listener block.
type Listener struct {
	// Name is the block label; instances see it in LISTEN_FDNAMES.
	Name string
	// Network is "tcp" or "unix".
	Network string
	// Address is "host:port" for tcp (":0" picks one random port shared by
	// every instance) and an absolute path for unix.
	Address string
	Mode    Mode
	// Backlog is the listen(2) backlog; 0 leaves the kernel default.
	Backlog int
	// NonBlocking sets O_NONBLOCK on the socket handed to instances.
	NonBlocking bool
	// DefRange is where the block is defined, for messages about it.
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
)

// Ready is an app's ready block.
type Ready struct {
	Check   ReadyCheck
	Path    string        // for http
	Delay   time.Duration // for delay
	Timeout time.Duration // not ready by then is a failed start
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

// Reload is an app's reload block.
type Reload struct {
	// Parallel is how many instances are replaced at a time.
	Parallel int
}

// App is one app block (or one Procfile line).
type App struct {
	Name string
	// Command is the argv to exec. A command written as a string becomes
	// ["/bin/sh", "-c", string].
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
	// User and Group, when set, are the account the instances run as.
	User  string
	Group string
	// DependsOn are apps that must be ready before this one starts.
	DependsOn []string
	Ready     Ready
	Restart   Restart
	Stop      Stop
	Reload    Reload
	// Required: if this app gives up, the whole runner drains and exits 1.
	Required bool
	// Port is the PORT a Procfile line was assigned (foreman's 5000 + 100*i);
	// 0 for HCL apps, whose PORT comes from their first listener.
	Port int
	// DefRange is where the block (or Procfile line) is defined.
	DefRange hcl.Range
}

// Defaults used where a block or attribute is absent.
const (
	DefaultReadyDelay   = time.Second
	DefaultReadyTimeout = 30 * time.Second
	DefaultBackoff      = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMinUptime    = time.Second
	DefaultMaxRestarts  = 10
	DefaultWindow       = 60 * time.Second
	DefaultStopTimeout  = 10 * time.Second
	DefaultProcfilePort = 5000
)

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
