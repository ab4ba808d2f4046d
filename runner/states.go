package runner

// This file is the supervisor's map: every state an instance, a slot and
// an app can be in, and every transition an instance may make. The
// handlers in machine.go and rollout.go move things between these states;
// setState refuses any instance transition not listed here.

// instState is where one process is in its life.
//
//	spawning ──spawned──▶ starting ──ready──▶ ready ──STOPPING=1──▶ dying
//	    │                    │                 │ stop                  │ stop, or its
//	    │                    │                 ▼ (proxied)             │ replacement
//	    │                    │             quiescing                   │ is ready
//	    │ spawn              │ stop            │ Quiesced, or          │
//	    │ failed             │                 │ stop.timeout          │
//	    │                    └──────────────▶ stopping ◀───────────────┘
//	    ▼                                      │ stop.timeout, force
//	  exited ◀───────── exit (any state) ──── killing
type instState int

const (
	// stSpawning: the process layer was asked to start it; no pid yet.
	stSpawning instState = iota
	// stStarting: it runs and has not passed its ready check yet.
	stStarting
	// stReady: it passed its ready check. Only a ready serving instance
	// that is not failing its health check is routable.
	stReady
	// stDying: it announced STOPPING=1; its replacement is starting and
	// it gets no signal, only SIGKILL if it outlives stop.timeout.
	stDying
	// stQuiescing: it is to stop, takes no new connections, and waits
	// for the connections forwarded to it to be over (Quiesced) before it
	// is sent its stop signal; stop.timeout bounds the wait.
	stQuiescing
	// stStopping: it was sent its stop signal (or, coming from dying,
	// only had the stop timer armed); the runner waits for its exit.
	stStopping
	// stKilling: it was sent SIGKILL (stop.timeout passed, or a forced
	// shutdown); the runner waits for its exit.
	stKilling
	// stExited: it was reaped, or never started. Terminal: the instance
	// is gone from every table.
	stExited
)

var instStateNames = [...]string{"spawning", "starting", "ready", "dying", "quiescing", "stopping", "killing", "exited"}

func (s instState) String() string { return instStateNames[s] }

// transitions lists, for each state, the states an instance may move to.
// Anything else is a bug in a handler, never a silent half-update.
var transitions = [...][]instState{
	stSpawning:  {stStarting, stExited},
	stStarting:  {stReady, stDying, stStopping, stKilling, stExited},
	stReady:     {stDying, stQuiescing, stStopping, stKilling, stExited},
	stDying:     {stQuiescing, stStopping, stKilling, stExited},
	stQuiescing: {stStopping, stKilling, stExited},
	stStopping:  {stKilling, stExited},
	stKilling:   {stExited},
	stExited:    {},
}

// leaving: it was told to stop (or killed) and the runner waits for its
// exit.
func (s instState) leaving() bool {
	return s == stQuiescing || s == stStopping || s == stKilling
}

func allowed(from, to instState) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// location is where an instance hangs in its app. A live instance is in
// exactly one location, and the location limits its state:
//
//	locCur      the slot's serving process: spawning, starting, ready or dying
//	locNext     the slot's replacement, not ready yet: spawning or starting
//	locDraining detached from its slot (replaced, scaled away, stopped, part
//	            of an aborted rollout): spawning (cancelled: it is stopped as
//	            soon as it has a pid), quiescing, stopping or killing
//
// A serving process or a replacement that was stopped (a failed ready
// check, a stop-first replacement, clusterrun stop) stays in its place
// until it exits, so that its exit is judged where it happened.
type location int

const (
	locCur location = iota
	locNext
	locDraining
)

var locNames = [...]string{"cur", "next", "draining"}

func (l location) String() string { return locNames[l] }

// fits reports whether state s is possible in location l.
func (l location) fits(s instState) bool {
	switch l {
	case locCur:
		return s != stExited
	case locNext:
		return s == stSpawning || s == stStarting || s == stStopping || s == stKilling
	}
	return s == stSpawning || s == stQuiescing || s == stStopping || s == stKilling
}

// slotState is the state of one instance number of an app.
type slotState int

const (
	// slotUp: it has a serving process (cur), in any state of its life.
	slotUp slotState = iota
	// slotBackoff: its process crashed; a timer restarts it.
	slotBackoff
	// slotFailed: it gave up (too many crashes), or exited non-zero under
	// restart policy "never".
	slotFailed
	// slotDone: it exited 0 and its policy does not restart it (a run-once
	// step such as a build).
	slotDone
	// slotStopped: stopped on purpose (clusterrun stop, drain, stop-first
	// replacement waiting for the exit).
	slotStopped
)

var slotStateNames = [...]string{"up", "backoff", "failed", "done", "stopped"}

func (s slotState) String() string { return slotStateNames[s] }

// appState is what the runner means to do with an app.
type appState int

const (
	// appWaiting: it should run, and starts once the apps it depends on
	// are ready or done.
	appWaiting appState = iota
	// appRunning: its slots were started.
	appRunning
	// appStopped: it should not run (clusterrun stop, not selected on the
	// command line, or the runner is draining).
	appStopped
	// appRemoved: a reload removed it; it is forgotten once drained.
	appRemoved
)

var appStateNames = [...]string{"waiting", "running", "stopped", "removed"}

func (s appState) String() string { return appStateNames[s] }

// phase is the runner's own state.
type phase int

const (
	running phase = iota
	// draining: stopping every app gracefully, dependents first.
	draining
	// forcing: every process was sent SIGKILL.
	forcing
)

var phaseNames = [...]string{"running", "draining", "forcing"}

func (p phase) String() string { return phaseNames[p] }

// why says why a replacement (a slot's next) was started.
type why int

const (
	whyRollout  why = iota // a reload, restart or rollback replaces the slot
	whyStopping            // the serving process announced STOPPING=1
	whyHealth              // the serving process failed its health check
	whyWatchdog            // the serving process stopped sending WATCHDOG=1
	whyMemory              // the serving process stayed above max_memory
)

// timerKind names the machine's timers.
type timerKind int

const (
	tReadyDelay   timerKind = iota // delay readiness elapsed
	tReadyTimeout                  // not ready within ready.timeout
	tStable                        // ready for min_uptime: the crash loop is over
	tQuiesce                       // stop.timeout without Quiesced: signal anyway
	tStop                          // stop.timeout after the stop signal
	tWatchdog                      // no WATCHDOG=1 within the interval
	tBackoff                       // restart after a crash
)

var timerNames = [...]string{"ready delay", "ready timeout", "stable", "quiesce timeout", "stop timeout", "watchdog", "backoff"}

func (k timerKind) String() string { return timerNames[k] }
