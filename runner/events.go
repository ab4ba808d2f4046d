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

// InstanceID names one process of an instance for its whole life.
type InstanceID = status.InstanceID

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

// Quiesced: the connections forwarded to the instance are over (see
// Sockets.Quiesce).
type Quiesced struct{ ID InstanceID }

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

// ReloadRequested: SIGHUP (Reply nil) or `clusterrun reload [APP]`.
type ReloadRequested struct {
	App   string
	Reply chan<- status.ReloadResult
}

// RestartRequested: `clusterrun restart APP[.N]`; Instance -1 means all.
type RestartRequested struct {
	App      string
	Instance int
	Reply    chan<- status.ReloadResult
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
func (Quiesced) event()          {}
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
