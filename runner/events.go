package runner

import (
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/sdnotify"
	"github.com/clusterrun/clusterrun/status"
)

// Event is an input of the supervisor: something that happened to a
// process, a timer, a file, or a request from a user. Every event goes
// through Machine.Handle.
type Event interface{ event() }

// InstanceID names one process of an instance for its whole life, from the
// start request to its exit; pids are known only later and are reused.
type InstanceID uint64

// Spawned: the process layer started the process.
type Spawned struct {
	ID  InstanceID
	PID int
	// Addrs are its private addresses by listener name (proxy mode).
	Addrs map[string]string
	// ProbeAddr is where tcp and http checks knock ("127.0.0.1:5000"), or
	// "" when the instance has no address of its own.
	ProbeAddr string
}

// SpawnFailed: the process could not be started, or the start was
// cancelled before it happened.
type SpawnFailed struct {
	ID        InstanceID
	Err       error
	Cancelled bool
}

// Exited: the process was reaped.
type Exited struct {
	ID     InstanceID
	Status proc.Status
}

// Notified: the process sent an sd_notify message.
type Notified struct {
	ID  InstanceID
	Msg sdnotify.Message
}

// ProbeResult is the outcome of a tcp or http check of an instance: its
// ready check passed (Health false), or one health check passed or failed.
type ProbeResult struct {
	ID     InstanceID
	Health bool
	OK     bool
	// Detail says what failed: "connection refused", "status 503".
	Detail string
}

// Loaded: the file was read again for reload number Seq.
type Loaded struct {
	Seq    int
	Config *hclconfig.Config
	// Creds are the accounts of the apps that name a user or group.
	Creds map[string]*syscall.Credential
	// Err holds the rendered diagnostics of an invalid file.
	Err error
}

// UsageSampled carries the CPU and memory of every live process group.
type UsageSampled struct {
	Usage    map[int]proc.Usage // by pid (= process group)
	Interval time.Duration      // since the previous sample, for CPU %
}

// ReloadResult answers a reload or restart request.
type ReloadResult struct {
	// Summary has one line per app, saying what happened to it.
	Summary string
	// Apps says the same per app, for programs.
	Apps []AppResult
	Err  error
}

// AppResult is what a reload or restart did to one app.
type AppResult struct {
	App string `json:"app"`
	// Outcome is one of the status.Reload* outcomes, or "started" (a new
	// app), "removed", or "deferred" (not running: the release applies
	// when it starts).
	Outcome string `json:"outcome"`
	// Release is the release it rolled out.
	Release int `json:"release"`
}

// ReloadRequested: SIGHUP (Reply nil) or `clusterrun reload [APP]`.
type ReloadRequested struct {
	App   string
	Reply chan<- ReloadResult
}

// RestartRequested: `clusterrun restart APP[.N]`; Instance -1 means all.
type RestartRequested struct {
	App      string
	Instance int
	Reply    chan<- ReloadResult
}

// ScaleRequested: `clusterrun scale APP N|+N|-N`.
type ScaleRequested struct {
	App, Spec string
	Reply     chan<- ScaleResult
}

// ScaleResult answers a ScaleRequested.
type ScaleResult struct {
	N   int
	Err error
}

// StopRequested: `clusterrun stop APP`.
type StopRequested struct {
	App   string
	Reply chan<- error
}

// StartRequested: `clusterrun start APP`.
type StartRequested struct {
	App   string
	Reply chan<- error
}

// DrainRequested: the first SIGTERM or SIGINT (a required app that gives
// up drains from inside the machine, with exit code 1).
type DrainRequested struct {
	Signal syscall.Signal
	// HungUp: the controlling terminal went away (a SIGHUP that means
	// "the window was closed", not "reload").
	HungUp bool
}

// ForceRequested: a second SIGTERM or SIGINT.
type ForceRequested struct{ Signal syscall.Signal }

// ScaleAllRequested: SIGTTIN (Up) or SIGTTOU.
type ScaleAllRequested struct{ Up bool }

// ForwardRequested: a signal to pass on to every instance.
type ForwardRequested struct{ Signal syscall.Signal }

// SnapshotRequested asks for the status.
type SnapshotRequested struct{ Reply chan<- status.Runner }

// timerFired is delivered by the clock when a timer the machine armed
// elapses. tok tells a stale timer (already stopped or re-armed) from the
// current one.
type timerFired struct {
	kind timerKind
	in   *instance
	s    *slot
	tok  uint64
}

func (Spawned) event()           {}
func (SpawnFailed) event()       {}
func (Exited) event()            {}
func (Notified) event()          {}
func (ProbeResult) event()       {}
func (Loaded) event()            {}
func (UsageSampled) event()      {}
func (ReloadRequested) event()   {}
func (RestartRequested) event()  {}
func (ScaleRequested) event()    {}
func (StopRequested) event()     {}
func (StartRequested) event()    {}
func (DrainRequested) event()    {}
func (ForceRequested) event()    {}
func (ScaleAllRequested) event() {}
func (ForwardRequested) event()  {}
func (SnapshotRequested) event() {}
func (timerFired) event()        {}

// LifecycleKind is what happened to an instance, for subscribers.
type LifecycleKind int

const (
	// Started: the process runs (it has a pid).
	Started LifecycleKind = iota
	// Routable: it is ready and takes new connections.
	Routable
	// Unroutable: it takes no new connections any more. Published before
	// its stop signal is sent.
	Unroutable
	// Draining: it was told to stop (or announced that it stops).
	Draining
	// Crashed: it exited when nobody asked it to; Reason says how.
	Crashed
	// Gone: it exited and was reaped (after Crashed, if it crashed).
	Gone
)

var lifecycleNames = [...]string{"started", "routable", "unroutable", "draining", "crashed", "gone"}

func (k LifecycleKind) String() string { return lifecycleNames[k] }

// Lifecycle is published by the supervisor whenever an instance changes in
// a way other parts act on: the proxy routes to Routable instances only,
// metrics count Crashed ones.
type Lifecycle struct {
	Kind     LifecycleKind
	ID       InstanceID
	App      string
	Instance int
	PID      int
	Release  int
	// Addrs are the instance's private addresses by listener name, and
	// Listeners the listener blocks of its release.
	Addrs     map[string]string
	Listeners []*hclconfig.Listener
	// Reason says why: "exited with status 1", "ready after 1.2s".
	Reason string
	// ReadyAfter, on Routable, is how long the instance took to become
	// ready. An instance is routable again when its health check recovers,
	// with the same ReadyAfter: count readiness on its first Routable.
	ReadyAfter time.Duration
}
