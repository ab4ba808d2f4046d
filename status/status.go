// Package status is the one description of a running runner that every
// part shares: the supervisor fills it in, the control socket sends it as
// JSON, the CLI prints it, and the metrics endpoint reads its counters. It
// holds data only, so that none of its readers depends on the supervisor.
package status

import (
	"strconv"
	"time"
)

// Runner is a snapshot of the whole runner.
type Runner struct {
	PID     int       `json:"pid"`
	Config  string    `json:"config"`
	Started time.Time `json:"started"`
	// Phase is running, draining or forcing.
	Phase string `json:"phase"`
	// Goroutines and FDs are the runner's own, to spot leaks.
	Goroutines int `json:"goroutines"`
	FDs        int `json:"fds"`
	// PSSBytes and USSBytes are clusterrun's own memory: the runner and
	// its guard process together, from /proc/PID/smaps_rollup. PSS counts
	// each page split among the processes that map it, USS the pages only
	// one of them maps; -1 where unknown.
	PSSBytes  int64      `json:"pss_bytes"`
	USSBytes  int64      `json:"uss_bytes"`
	Listeners []Listener `json:"listeners"`
	Apps      []App      `json:"apps"`
	Counters  Counters   `json:"counters"`
}

// Listener is one bound listener.
type Listener struct {
	Name string `json:"name"`
	// Address is where it listens, with ":0" resolved: "127.0.0.1:8080",
	// "unix:/run/app.sock".
	Address string `json:"address"`
	Mode    string `json:"mode"`
	Balance string `json:"balance,omitempty"`
	// Proxy and http modes: the client connections open, the most it
	// holds at once (max_connections, or what the runner's descriptor
	// budget leaves; proxy mode), those (http mode: requests) waiting in
	// the runner for an instance that can take them, and those closed
	// (http mode: answered 503) after queue_timeout since start.
	Conns         int   `json:"conns,omitempty"`
	MaxConns      int   `json:"max_conns,omitempty"`
	Queued        int   `json:"queued,omitempty"`
	QueueTimeouts int64 `json:"queue_timeouts,omitempty"`
}

// App is one app.
type App struct {
	Name string `json:"name"`
	// State is waiting, starting, ready, reloading, crashloop, failed,
	// done, stopping, stopped or removing.
	State string `json:"state"`
	// Instances is the desired number of instances, and InstancesFrom
	// where that count came from: CountFile, CountFormation or CountScale.
	Instances     int    `json:"instances"`
	InstancesFrom string `json:"instances_from"`
	// Release numbers the newest release of the app the runner accepted,
	// counting from 1 per app.
	Release   int      `json:"release"`
	Listeners []string `json:"listeners"`
	Rollout   *Rollout `json:"rollout,omitempty"`
	// LastRollout is how the app's last reload, restart or rollback
	// ended, if one did.
	LastRollout *LastRollout `json:"last_rollout,omitempty"`
	Procs       []Instance   `json:"procs"`
	// HTTP holds the requests its http listeners answered since the
	// runner started, per listener and instance number.
	HTTP []HTTPCounts `json:"http,omitempty"`
}

// HTTPCounts are the requests one http listener answered for one instance
// number (all its processes, since the runner started); they only grow.
type HTTPCounts struct {
	Listener string `json:"listener"`
	Instance int    `json:"instance"`
	// ByClass counts the answers by status class: [0] 1xx … [4] 5xx,
	// including the runner's own 502, 503 and 504.
	ByClass [5]uint64 `json:"by_class"`
	// Buckets counts the requests by duration: Buckets[i] took at most
	// HTTPBuckets[i] seconds and more than the bound before (not
	// cumulative); the last one is above them all. Sum is the total in
	// seconds.
	Buckets []uint64 `json:"buckets"`
	Sum     float64  `json:"sum_seconds"`
}

// HTTPBuckets are the upper bounds of HTTPCounts.Buckets, in seconds.
var HTTPBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// HTTPRecent is one process's last minute behind an http listener.
type HTTPRecent struct {
	// PerSec is its answers per second; P50 and P99 the median and 99th
	// percentile of their durations (to about 6%).
	PerSec float64       `json:"req_per_sec"`
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
}

// HasHTTP reports whether a process of r has the figures of an http
// listener: status and top show their columns only then.
func (r *Runner) HasHTTP() bool {
	for _, a := range r.Apps {
		for _, p := range a.Procs {
			if p.HTTP != nil {
				return true
			}
		}
	}
	return false
}

// Columns are h as status and top print it, each in at most six cells:
// requests per second, p50 and p99; "-" each for none (or a nil h).
func (h *HTTPRecent) Columns() (rate, p50, p99 string) {
	if h == nil || h.PerSec == 0 {
		return "-", "-", "-"
	}
	rate = strconv.FormatFloat(h.PerSec, 'f', 1, 64)
	if h.PerSec >= 100 {
		rate = strconv.FormatFloat(h.PerSec, 'f', 0, 64)
	}
	return rate, latency(h.P50), latency(h.P99)
}

// latency is a duration in two or three significant figures.
func latency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}

// Rollout is an app's rolling replacement in progress.
type Rollout struct {
	// Kind is reload, restart or rollback.
	Kind     string `json:"kind"`
	Release  int    `json:"release"`
	Replaced int    `json:"replaced"`
	Total    int    `json:"total"`
}

// LastRollout is how a rollout ended.
type LastRollout struct {
	// Kind is reload, restart or rollback; Outcome one of the Reload*
	// outcomes.
	Kind    string `json:"kind"`
	Outcome string `json:"outcome"`
	Release int    `json:"release"`
	// Why says what ended it, for an outcome other than completed:
	// "web.0 (pid 4121) exited with status 1 before it was ready".
	Why      string    `json:"why,omitempty"`
	Replaced int       `json:"replaced"`
	Total    int       `json:"total"`
	At       time.Time `json:"at"`
}

// Instance is one process of an app, or one instance number that has none
// at the moment (PID 0).
type Instance struct {
	App      string `json:"app"`
	Instance int    `json:"instance"`
	PID      int    `json:"pid"`
	// State is spawning, starting, ready, dying, stopping or killing for a
	// process; backoff, failed, done or stopped for an instance number
	// without one.
	State string `json:"state"`
	// Role is serving, replacement (starting next to a serving one),
	// draining (replaced or stopped, finishing its requests), or "" for an
	// instance number without a process.
	Role string `json:"role"`
	// CrashLoop: the instance crashed recently and has not stayed up
	// min_uptime since; a ready one is not yet trusted.
	CrashLoop bool      `json:"crash_loop,omitempty"`
	Release   int       `json:"release"`
	Restarts  int       `json:"restarts"`
	Started   time.Time `json:"started,omitzero"`
	// UptimeSeconds is how long the process has run, at the snapshot.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// ReadyAfter is how long it took to become ready.
	ReadyAfter time.Duration `json:"ready_after_ns,omitempty"`
	// Message is the instance's last sd_notify STATUS=.
	Message string `json:"message,omitempty"`
	// Addr is its private address in proxy mode.
	Addr string `json:"addr,omitempty"`
	// Conns is the number of proxied connections open to it (http mode:
	// its requests in flight, upgraded connections included); Waiting how
	// many of them (dials included) have had no byte back yet, the oldest
	// for OldestWait.
	Conns      int           `json:"conns,omitempty"`
	Waiting    int           `json:"waiting,omitempty"`
	OldestWait time.Duration `json:"oldest_wait_ns,omitempty"`
	// Hung: the proxy sends it no new connection (but one at a time to
	// find out) because it has sent nothing for a while with connections
	// waiting on it; it is routable again once it answers.
	Hung bool `json:"hung,omitempty"`
	// HTTP is its last minute behind an http listener, nil when it has
	// none.
	HTTP *HTTPRecent `json:"http,omitempty"`
	// CPUPercent is the process group's CPU use over the last sample (100
	// = one core); -1 where unknown.
	CPUPercent float64 `json:"cpu_percent"`
	// PSSBytes and USSBytes sum the PSS and USS of every process of the
	// instance's process group (resident sizes would count the pages the
	// processes share once per process); -1 where unknown.
	PSSBytes int64 `json:"pss_bytes"`
	USSBytes int64 `json:"uss_bytes"`
	// LastExit is how the previous process of this instance number ended.
	LastExit *Exit `json:"last_exit,omitempty"`
}

// Exit is how a process ended.
type Exit struct {
	PID int `json:"pid"`
	// Code is the exit status, or 128+signal.
	Code int `json:"code"`
	// Signal names the signal that killed it, or "".
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

// Restart reasons, the keys of Counters.Restarts.
const (
	RestartCrash    = "crash"    // exited when nobody asked it to
	RestartStopping = "stopping" // announced STOPPING=1
	RestartHealth   = "health"   // failed its health check
	RestartWatchdog = "watchdog" // stopped sending WATCHDOG=1
	RestartMemory   = "memory"   // above max_memory
	RestartManual   = "manual"   // clusterrun restart
)

// Reload outcomes, the keys of Counters.Reloads. A reload of several apps
// counts once per app.
const (
	ReloadCompleted  = "completed"  // every instance replaced
	ReloadAborted    = "aborted"    // a new instance failed; the old ones serve
	ReloadRejected   = "rejected"   // the file was invalid; nothing changed
	ReloadSuperseded = "superseded" // a newer reload took over
	ReloadCancelled  = "cancelled"  // the app was stopped or removed, or the runner is stopping
)

// Counters only ever grow; the metrics endpoint serves them.
type Counters struct {
	// Restarts by app, then by reason.
	Restarts map[string]map[string]int `json:"restarts"`
	// Reloads by outcome.
	Reloads map[string]int `json:"reloads"`
	// Ready counts instances that became ready, and ReadySeconds sums how
	// long each took.
	Ready        int     `json:"ready"`
	ReadySeconds float64 `json:"ready_seconds"`
}

// Progress is how far the runner is from serving, for the service manager
// that runs it: of the apps that must be up (every app but those stopped
// or removed), how many are ready or done, and which gave up.
type Progress struct {
	// Phase is running, draining or forcing.
	Phase string
	// Total is the number of apps that must be up; Ready of them are ready
	// (every instance serves) or done (a one-shot step that exited 0).
	Total, Ready int
	// Failed are the apps that gave up, or wait on one that did: they will
	// not be up unless someone starts or reloads them.
	Failed []string
}

// Settled: every app that must be up is ready, done or failed.
func (p Progress) Settled() bool { return p.Ready+len(p.Failed) >= p.Total }
