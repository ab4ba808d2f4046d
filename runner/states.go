package runner

// This file is the supervisor's map: every state an instance, a slot and
// an app can be in, the transitions each may make, and the intents with
// which the runner stops an instance. The handlers in instance.go, slot.go,
// app.go, rollout.go and shutdown.go move things between these states;
// setState, setSlot and setApp refuse any transition not listed here.

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
var transitions = [][]instState{
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

func allowed[S comparable](table [][]S, from int, to S) bool {
	for _, s := range table[from] {
		if s == to {
			return true
		}
	}
	return false
}

// intent is what the runner decided when it decided that an instance
// stops, set once at that moment (stop, kill and the rollout set it;
// STOPPING=1 sets announced). The exit handler (slot.go, gone) reads it
// with the instance's state and location instead of flags.
//
// The first decision stands, with these exceptions (see decide): forced
// replaces any; a stop of the app or the runner (retired, userStop,
// shutdown) replaces a decision whose exit would start something or be
// judged (restart, announced, failedStart, unhealthy); a rollout that ends
// abandons its replacement that failed its ready check; a stop-first
// rollout restarts in place one that announced STOPPING=1 (rather than
// wait for it to exit); and a restart's release may be changed (a rollout
// that rolls back).
type intent int

const (
	// undecided: nobody decided it stops; an exit is a crash, judged by
	// the restart policy.
	undecided intent = iota
	// announced: it sent STOPPING=1 and stops by itself. A replacement
	// takes over from it; with none, its exit is judged like a crash.
	announced
	// failedStart: it was not ready within ready.timeout; its exit is a
	// failed start, judged by the restart policy (or the rollout).
	failedStart
	// unhealthy: it failed its health check under restart policy
	// "never"; its exit is judged by the policy.
	unhealthy
	// replaced: a ready replacement took its place (a rollout, or a
	// repair after a failed health check, STOPPING=1, max_memory).
	replaced
	// restart: stopped so that its slot starts the intent's release once
	// it has exited (a stop-first replacement).
	restart
	// abandoned: a rollout's replacement that nobody waits for any more
	// (the rollout ended).
	abandoned
	// retired: its slot was taken out of service (a scale-down, a restart
	// of the app, the app removed).
	retired
	// userStop: clusterrun stop.
	userStop
	// shutdown: the runner drains.
	shutdown
	// forced: a second SIGTERM; it is killed at once.
	forced
)

var intentNames = [...]string{"undecided", "announced STOPPING=1", "not ready in time", "unhealthy", "replaced", "restarted in place",
	"abandoned", "retired", "stopped", "shutdown", "forced"}

func (i intent) String() string { return intentNames[i] }

// normal: its exit is what the runner asked for, never a crash.
func (i intent) normal() bool { return i >= replaced }

// final: nothing starts in its place (the app or the runner stops).
func (i intent) final() bool { return i >= retired }

// open: its exit still leads somewhere (a start, or a judgement) that a
// stop of the app or the runner must cancel.
func (i intent) open() bool {
	return i == announced || i == failedStart || i == unhealthy || i == restart
}

// location is where an instance hangs in its app. A live instance is in
// exactly one location, and the location limits its state:
//
//	locCur      the slot's serving process, in any state of its life
//	locNext     the slot's replacement, not ready yet: spawning or starting
//	            (or stopping, killing: its start failed)
//	locDraining detached from its slot (replaced, scaled away, stopped, part
//	            of an aborted rollout), with a decided intent: spawning
//	            (cancelled: it is stopped as soon as it has a pid),
//	            quiescing, stopping or killing
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
	// slotStopped: no process, and none on its way: stopped on purpose
	// (clusterrun stop, a drain), or not started yet (a new slot).
	slotStopped
)

var slotStateNames = [...]string{"up", "backoff", "failed", "done", "stopped"}

// slotTransitions lists, for each slot state, the states a slot may move
// to. A new slot is stopped until its first process is asked for.
var slotTransitions = [][]slotState{
	slotUp:      {slotBackoff, slotFailed, slotDone, slotStopped},
	slotBackoff: {slotUp, slotStopped},
	slotFailed:  {slotUp},
	slotDone:    {slotUp},
	slotStopped: {slotUp},
}

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

// appTransitions lists, for each app state, the states an app may move
// to. Removed is the end: the app is forgotten once it has drained.
var appTransitions = [][]appState{
	appWaiting: {appRunning, appStopped, appRemoved},
	appRunning: {appStopped, appRemoved},
	appStopped: {appWaiting, appRemoved},
	appRemoved: {},
}

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
