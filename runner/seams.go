package runner

import (
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/logmux"
)

// The supervisor reaches the world only through these small interfaces, so
// that it runs in tests with fake processes and a fake clock: no real
// process, no sleep. None of their methods may block on the world; answers
// come back later as events.

// Procs starts and signals processes.
type Procs interface {
	// Start begins starting a process; a Spawned or SpawnFailed event
	// follows, then (after Spawned) exactly one Exited.
	Start(req StartRequest)
	// Cancel says a Start is no longer wanted. If it has not happened yet it
	// never will, and SpawnFailed{Cancelled: true} follows; otherwise
	// nothing changes.
	Cancel(id InstanceID)
	// Signal sends sig to the process group of a started process.
	Signal(id InstanceID, pid int, sig syscall.Signal) error
	// Alive says whether a started process still runs: false once it has
	// exited, even while its Exited event is still on its way (a timer
	// handled before that event must not take a dead process for a live
	// one).
	Alive(id InstanceID, pid int) bool
	// SetTag marks an instance's log prefix: "+" for a replacement still
	// starting, "-" for a replaced process draining, "" when serving.
	SetTag(id InstanceID, tag string)
}

// StartRequest is one process to start.
type StartRequest struct {
	ID    InstanceID
	Rel   *Release
	Index int
	// Private picks which of the slot's private sockets it gets (proxy
	// mode): one no other live process of the slot uses.
	Private int
	// Tag is the initial log tag.
	Tag string
}

// Clock tells the time and arms timers.
type Clock interface {
	Now() time.Time
	// After delivers ev to the machine once d has passed, unless the
	// returned timer is stopped first.
	After(d time.Duration, ev Event) Timer
}

// Timer is an armed timer.
type Timer interface {
	// Stop keeps the event from being delivered, if it was not yet.
	Stop()
}

// Prober checks instances' private addresses off the supervisor's goroutine.
type Prober interface {
	// Ready polls addr until the check passes, then delivers one
	// ProbeResult{OK: true}.
	Ready(id InstanceID, addr string, check hclconfig.ReadyCheck, path string)
	// Health checks addr every interval and delivers each result.
	Health(id InstanceID, addr string, h hclconfig.Health)
	// Stop ends every check of id; no result is delivered after it
	// returns.
	Stop(id InstanceID)
}

// Loader reads the config file again, off the supervisor's goroutine, and
// delivers a Loaded event with the same seq.
type Loader interface {
	Load(seq int)
}

// Sockets is the runner's set of listening sockets.
type Sockets interface {
	// Bind opens every listener of defs that is not open yet. All or
	// nothing; the error names the listener. warnings says what could not
	// change on a socket instances already hold.
	Bind(defs []*hclconfig.Listener) (warnings []string, err error)
	// Retain closes the sockets none of defs refers to.
	Retain(defs []*hclconfig.Listener)
	// ReleaseSlot gives back the per-slot sockets (reuseport, proxy
	// private) of an instance number that no longer exists.
	ReleaseSlot(app string, defs []*hclconfig.Listener, index int)
	// Addr says where a listener listens ("127.0.0.1:8080"), "" if unbound.
	Addr(def *hclconfig.Listener) string
	// Quiesce asks for a Quiesced event once the connections the proxies
	// forwarded to instance id are over: closed, or idle for idle after
	// their last byte, so that an answer is complete, not just begun. The
	// instance is already unroutable, and gets its stop signal only then:
	// until it is signalled it keeps answering what was forwarded to it,
	// even what still waits in its accept queue, which it would reset on
	// closing its socket. It must not block; the event may come late or
	// never (the machine bounds the wait by stop.timeout).
	Quiesce(id InstanceID, idle time.Duration)
}

// Log is where the supervisor writes its lines.
type Log interface {
	Printf(format string, args ...any)
	// Declare tells the log which apps exist, for the label width.
	Declare(apps []logmux.App)
}

// Release is one version of an app: its block from one loaded config, with
// the listener blocks it names and the account it runs as. Instances keep
// the release they were started with.
type Release struct {
	// Gen numbers the releases of all apps in load order.
	Gen       int
	App       *hclconfig.App
	Listeners []*hclconfig.Listener
	Cred      *syscall.Credential
}
