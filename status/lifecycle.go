package status

import (
	"fmt"
	"time"
)

// InstanceID names one process of an instance for its whole life, from the
// start request to its exit; pids are known only later and are reused.
type InstanceID uint64

// LifecycleKind is what happened, for subscribers of the runner's events.
type LifecycleKind int

// The kinds of lifecycle events. Instance events carry ID, Instance and
// (once known) PID; app events carry Instance -1.
const (
	// Started: the process runs (it has a pid).
	Started LifecycleKind = iota
	// Ready: it passed its ready check, once in its life. ReadyAfter says
	// how long that took.
	Ready
	// Routable: it takes new connections (ready, serving, and passing its
	// health check). It may become unroutable and routable again when its
	// health check fails and recovers; Ready is the one to count.
	Routable
	// Unroutable: it takes no new connections any more. Published before
	// its stop signal is sent.
	Unroutable
	// Draining: the runner decided it stops, and Reason says why:
	// "replaced" (a ready replacement took its place), "restarted in place"
	// (stop-first: its slot starts again once it exits), "retired" (scaled
	// down, its app restarted or removed), "stopped" (clusterrun stop),
	// "shutdown" (the runner drains), "forced" (a second SIGTERM),
	// "abandoned" (a rollout's replacement nobody waits for), "not ready in
	// time", "unhealthy" (restart policy never); or "STOPPING=1": it
	// announced that it stops.
	Draining
	// Signalled: it was sent its stop signal (Reason names it), once the
	// connections forwarded to it were answered, or the wait for them
	// timed out (Reason says so).
	Signalled
	// Crashed: it exited when nobody asked it to; Reason says how.
	Crashed
	// Gone: it exited and was reaped, or never started (after Crashed, if
	// it crashed).
	Gone
	// Restart: a new process was decided for instance number Instance;
	// Reason is one of the Restart* keys ("crash", "health", …) and Detail
	// says why in words.
	Restart
	// GaveUp: instance number Instance gave up (too many crashes, or a
	// failure its restart policy does not restart); Detail says why.
	GaveUp
	// RolloutBegan: a reload, restart or rollback of App began (Outcome is
	// its kind) towards Release.
	RolloutBegan
	// RolloutEnded: it ended; Outcome is one of the Reload* outcomes and
	// Detail the line the runner logged.
	RolloutEnded
	// Rejected: a reload read an invalid file (App ""); Detail holds the
	// diagnostics. Nothing changed.
	Rejected
	// Scaled: App's instance count changed to Count; Reason is where the
	// count came from (CountFile, CountFormation, CountScale).
	Scaled
	// AppState: App's state changed to Detail (stopped, waiting, running,
	// removed).
	AppState
	// ReloadBegan: a reload was asked for (SIGHUP, clusterrun reload, a
	// watch block); App names the one app it is limited to, or is "".
	ReloadBegan
	// ReloadEnded: that reload's outcome is known and its caller answered;
	// Outcome is ReloadCompleted, ReloadAborted, ReloadRejected or
	// ReloadCancelled, and Detail the answer's text.
	ReloadEnded

	// numKinds counts the kinds above; new kinds go before it.
	numKinds
)

var lifecycleNames = [...]string{"started", "ready", "routable", "unroutable", "draining", "signalled", "crashed", "gone",
	"restart", "gave-up", "rollout-began", "rollout-ended", "rejected", "scaled", "app-state",
	"reload-began", "reload-ended"}

func (k LifecycleKind) String() string {
	if k < 0 || int(k) >= len(lifecycleNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return lifecycleNames[k]
}

// MarshalText writes the kind as its name, for JSON.
func (k LifecycleKind) MarshalText() ([]byte, error) {
	if k < 0 || int(k) >= len(lifecycleNames) {
		return nil, fmt.Errorf("cannot write lifecycle kind %d", int(k))
	}
	return []byte(lifecycleNames[k]), nil
}

// UnmarshalText reads a kind's name.
func (k *LifecycleKind) UnmarshalText(b []byte) error {
	for i, n := range lifecycleNames {
		if n == string(b) {
			*k = LifecycleKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown lifecycle kind %q", b)
}

// Lifecycle is one event of the runner: a change of an instance (the proxy
// routes to Routable instances only, metrics count Ready and Crashed ones),
// a restart and its reason, a rollout's beginning and outcome, a rejected
// reload, a new instance count. Subscribers see every change, in order.
type Lifecycle struct {
	Kind LifecycleKind `json:"kind"`
	Time time.Time     `json:"time"`
	App  string        `json:"app,omitempty"`
	// Instance is the instance number, -1 for an event about the app.
	Instance int        `json:"instance"`
	ID       InstanceID `json:"id,omitempty"`
	PID      int        `json:"pid,omitempty"`
	Release  int        `json:"release,omitempty"`
	// Addrs are the instance's private addresses by listener name.
	Addrs map[string]string `json:"addrs,omitempty"`
	// Reason is a short word or phrase: how it exited ("exited with status
	// 1"), a Restart* key, a stop reason, a count's source.
	Reason string `json:"reason,omitempty"`
	// Detail is the sentence the runner logged about it, where there is one.
	Detail string `json:"detail,omitempty"`
	// Outcome is a rollout's kind (RolloutBegan) or outcome (RolloutEnded).
	Outcome string `json:"outcome,omitempty"`
	// Count is the new instance count (Scaled).
	Count int `json:"count,omitempty"`
	// ReadyAfter, on Ready and Routable, is how long the instance took to
	// become ready.
	ReadyAfter time.Duration `json:"ready_after_ns,omitempty"`
}

// Where an app's instance count comes from (App.InstancesFrom).
const (
	CountFile      = "file"  // instances in the config file
	CountFormation = "-m"    // up -m (foreman's formation)
	CountScale     = "scale" // clusterrun scale, SIGTTIN or SIGTTOU
)

// AppResult is what a reload or restart did to one app.
type AppResult struct {
	App string `json:"app"`
	// Outcome is one of the Reload* outcomes, or "started" (a new app),
	// "removed", or "deferred" (not running: the release applies when it
	// starts).
	Outcome string `json:"outcome"`
	// Release is the release it rolled out.
	Release int `json:"release"`
}

// ReloadResult answers a reload or restart request.
type ReloadResult struct {
	// Summary has one line per app, saying what happened to it.
	Summary string
	// Apps says the same per app, for programs.
	Apps []AppResult
	Err  error
}
