package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// Options configure a Runner.
type Options struct {
	// Config is the file as loaded at start.
	Config *hclconfig.Config
	// Load reads the config file again, for a reload. A non-nil error is
	// shown to the user as it is (it holds the rendered diagnostics).
	Load func() (*hclconfig.Config, error)
	// Log is where instance output and the runner's own lines go.
	Log *logmux.Mux
	// Signals delivers the runner's signals; nil means none.
	Signals <-chan signals.Event
	// Only, when not empty, names the apps to start (their dependencies are
	// started too); the others stay stopped until started by a command.
	Only []string
	// Formation is up's -m: instance counts by app name ("all" for every
	// app) that replace the file's at start and at every reload. An app
	// given 0 stays stopped until started by a command. Config and Load
	// give the file as written; the caller checks that the formation
	// applies to it (hclconfig.Config.WithFormation).
	Formation map[string]int
	// Exe is the clusterrun binary, used as the LISTEN_PID exec shim.
	Exe string
	// RuntimeDir is a private directory for the instances' notify sockets.
	RuntimeDir string
	// Reaper starts and waits for every process. There must be only one per
	// process, so the caller owns it.
	Reaper *proc.Reaper
	// SampleEvery is how often CPU and memory are sampled (0 = 2s).
	SampleEvery time.Duration
	// Activated are the sockets clusterrun was started with by socket
	// activation, for the listeners that claim them; nil if none.
	Activated *listeners.Activation
	// Supervisor, when not nil, hears how the runner is doing, for the
	// service manager that runs clusterrun (see Supervisor).
	Supervisor Supervisor
}

// Supervisor is told, on the runner's loop, how the runner is doing: its
// progress after every event, and a tick every Every for a watchdog. The
// tick is a case of the loop's own select, so it stops when the loop is
// stuck: a watchdog fed from it watches the loop, not a timer. Its methods
// must not block for long. Subscribe it to lifecycle events as well.
type Supervisor interface {
	Progress(status.Progress)
	// Every is the tick interval; 0 means no tick.
	Every() time.Duration
	Tick()
}

// Runner runs the supervisor for real: one goroutine (Run's) owns the
// Machine and feeds it every event — process exits, sd_notify messages,
// timers, probes, signals and control requests all arrive on one channel —
// so no state is shared and nothing in the supervisor needs a lock.
type Runner struct {
	opts    Options
	log     *logmux.Mux
	lset    *listeners.Set
	devnull *os.File
	// preload is the path of the Node preload script.
	preload string

	posts chan Event
	done  chan struct{}

	m      *Machine
	procs  *procs
	prober *prober
	socks  *sockets

	// marker is in every instance's environment, so that what they start
	// can be found when it escapes its process group; guard kills all of
	// it if the runner is killed.
	marker string
	guard  *proc.Guard
}

// New binds every listener and prepares the apps; nothing is started until
// Run. An error means nothing was started.
func New(opts Options) (*Runner, error) {
	if opts.Reaper == nil {
		return nil, errors.New("runner: no reaper")
	}
	if opts.SampleEvery == 0 {
		opts.SampleEvery = 2 * time.Second
	}
	creds, err := resolveCredentials(opts.Config)
	if err != nil {
		return nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		opts:    opts,
		log:     opts.Log,
		lset:    listeners.NewSet(),
		devnull: devnull,
		// Roomy, but a full channel only makes posters wait: it is never
		// a reason to drop an event.
		posts: make(chan Event, 256),
		done:  make(chan struct{}),
	}
	if err := r.writePreload(creds); err != nil {
		devnull.Close()
		return nil, err
	}
	r.marker = fmt.Sprintf("CLUSTERRUN_RUNNER=%d.%x", os.Getpid(), rand.Uint64())
	if r.guard, err = proc.StartGuard(opts.Reaper, opts.Exe, r.marker); err != nil {
		devnull.Close()
		return nil, err
	}
	r.procs = newProcs(r)
	r.prober = newProber(r.post)
	r.socks = newSockets(r)
	r.lset.Adopt(opts.Activated)
	warnings, err := r.socks.Bind(opts.Config.Listeners)
	if err != nil {
		r.guard.Close()
		r.lset.Close()
		devnull.Close()
		return nil, err
	}
	for _, w := range append(warnings, r.lset.DropUnclaimed()...) {
		r.log.Printf("%s", w)
	}
	m, err := NewMachine(opts.Config, Deps{
		Procs: r.procs, Clock: realClock{post: r.post}, Prober: r.prober, Loader: loader{r},
		Sockets: r.socks, Log: opts.Log, Creds: creds, Only: opts.Only, Formation: opts.Formation,
	})
	if err != nil {
		r.guard.Close()
		r.socks.close()
		r.lset.Close()
		devnull.Close()
		return nil, err
	}
	r.m = m
	m.Subscribe(r.socks.route)
	return r, nil
}

// writePreload puts the Node preload script into the runtime directory. An
// instance that runs as another user must be able to read it and reach its
// notify socket, so then the directory is opened to traversal; its notify
// sockets are owned by their instance's user and writable by it alone.
func (r *Runner) writePreload(creds map[string]*syscall.Credential) error {
	if r.opts.RuntimeDir == "" {
		return errors.New("runner: no runtime directory")
	}
	for _, c := range creds {
		if c != nil {
			if err := os.Chmod(r.opts.RuntimeDir, 0o711); err != nil {
				return err
			}
			break
		}
	}
	r.preload = filepath.Join(r.opts.RuntimeDir, "node-preload.js")
	if err := os.WriteFile(r.preload, listeners.NodePreload, 0o644); err != nil {
		return fmt.Errorf("cannot write the Node preload: %w", err)
	}
	return nil
}

// Subscribe calls fn with every lifecycle change, on the runner's
// goroutine; fn must not block. Call it before Run.
func (r *Runner) Subscribe(fn func(status.Lifecycle)) { r.m.Subscribe(fn) }

// Addrs describes where each listener listens, for the start-up banner.
func (r *Runner) Addrs() []string {
	var out []string
	for _, l := range r.opts.Config.Listeners {
		out = append(out, fmt.Sprintf("%s on %s (%s)", l.Name, r.lset.Addr(l), l.Mode))
	}
	return out
}

// Run starts the apps and supervises them until they have all stopped. It
// returns the exit code: 0 for a clean shutdown, 1 when a required app gave
// up, an instance had to be killed, or everything ended with a failure.
func (r *Runner) Run() int {
	defer r.cleanup()
	go r.procs.run()
	for _, a := range r.Addrs() {
		r.log.Printf("listening: %s", a)
	}
	tick := time.NewTicker(r.opts.SampleEvery)
	defer tick.Stop()
	sampling := false
	last := time.Now()
	var supTick <-chan time.Time // nil: no supervisor tick
	if sup := r.opts.Supervisor; sup != nil && sup.Every() > 0 {
		t := time.NewTicker(sup.Every())
		defer t.Stop()
		supTick = t.C
	}
	r.m.Start()
	r.progress()
	for {
		if done, code := r.m.Finished(); done {
			if r.stopEscaped() && code == 0 {
				code = 1 // something had to be killed: not a clean stop
			}
			if r.m.phase != running {
				r.log.Printf("all instances stopped; exiting with status %d", code)
			} else {
				r.log.Printf("exiting with status %d", code)
			}
			return code
		}
		select {
		case ev := <-r.posts:
			if u, ok := ev.(UsageSampled); ok {
				sampling = false
				if u.Usage == nil {
					continue // sampling is not available here
				}
			}
			if s, ok := ev.(SnapshotRequested); ok {
				st := r.m.Snapshot()
				r.socks.addConns(&st)
				s.Reply <- st
				continue
			}
			r.m.Handle(ev)
			r.progress()
		case sev := <-r.opts.Signals:
			if sev.Kind == signals.Repeated {
				r.log.Printf("received %s again within %s of the first: the same request to stop (GNU timeout, for one, signals the runner and then its process group); send it again to kill at once",
					signals.Name(sev.Signal), human(signals.SameSend))
				continue
			}
			ev := translate(sev)
			if _, ok := ev.(DrainRequested); ok {
				// Sockets from socket activation outlive this runner: the
				// proxy stops accepting on them before any instance leaves
				// it, so that what arrives during the drain waits in the
				// socket's queue for the next runner, not in a proxy with
				// nowhere to send it.
				r.socks.stopAccepting(r.lset.AdoptedPublic())
			}
			r.m.Handle(ev)
			r.progress()
		case <-supTick:
			r.opts.Supervisor.Tick()
		case now := <-tick.C:
			// Only max_memory needs a steady sample; status and metrics
			// measure on demand, so an idle runner reads nothing.
			if sampling || !r.m.NeedsSampling() {
				continue
			}
			sampling = true
			pids, interval := r.m.Pids(), now.Sub(last)
			last = now
			go func() {
				u, err := proc.GroupUsage(pids, true)
				if err != nil {
					u = nil
				}
				r.post(UsageSampled{Usage: u, Interval: interval})
			}()
		}
	}
}

// progress tells the Supervisor, if any, where the apps are after an event.
func (r *Runner) progress() {
	if r.opts.Supervisor != nil {
		r.opts.Supervisor.Progress(r.m.Progress())
	}
}

// translate turns a signal into the supervisor's event.
func translate(ev signals.Event) Event {
	switch ev.Kind {
	case signals.Shutdown:
		return DrainRequested{Signal: ev.Signal}
	case signals.HangUp:
		return DrainRequested{Signal: ev.Signal, HungUp: true}
	case signals.Force:
		return ForceRequested{Signal: ev.Signal}
	case signals.Reload:
		return ReloadRequested{}
	case signals.ScaleUp, signals.ScaleDown:
		return ScaleAllRequested{Up: ev.Kind == signals.ScaleUp}
	}
	return ForwardRequested{Signal: ev.Signal}
}

// stopEscaped stops the processes that left their instance's process group
// and outlived it: orphans reparented to the runner (a child subreaper),
// and processes carrying its marker. They get SIGTERM, then SIGKILL after
// the longest stop timeout. It reports whether any had to be killed.
func (r *Runner) stopEscaped() (killed bool) {
	find := func() []int {
		pids := proc.Marked(r.marker, os.Getpid())
		return slices.DeleteFunc(pids, func(p int) bool { return p == r.guard.PID() })
	}
	pids := find()
	if len(pids) == 0 {
		return false
	}
	grace := time.Second
	for _, a := range r.opts.Config.Apps {
		grace = max(grace, min(a.Stop.Timeout, 30*time.Second))
	}
	r.log.Printf("stopping %s that escaped their instance's process group (pids %v)", plural(len(pids), "process", "processes"), pids)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGTERM)
	}
	if waitGone(find, grace) {
		r.log.Printf("the escaped processes stopped")
		return false
	}
	left := find()
	r.log.Printf("%s that escaped did not stop within %s; killing (pids %v)", plural(len(left), "process", "processes"), human(grace), left)
	for _, p := range left {
		syscall.Kill(p, syscall.SIGKILL)
	}
	waitGone(find, 2*time.Second)
	return true
}

// waitGone checks every 20ms, until d has passed, whether find finds
// nothing any more. Processes that are not the runner's children signal
// their end to no one, so this is a bounded poll.
func waitGone(find func() []int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if len(find()) == 0 {
			return true
		}
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

func (r *Runner) cleanup() {
	close(r.done)
	r.guard.Close()
	r.procs.stop()
	r.prober.close()
	r.socks.close()
	r.lset.Close()
	r.devnull.Close()
}

// post hands ev to the loop. After the loop has ended it drops ev: whatever
// it was about no longer matters.
func (r *Runner) post(ev Event) {
	select {
	case r.posts <- ev:
	case <-r.done:
	}
}

// call posts an event carrying a reply channel and waits for the reply.
func call[T any](ctx context.Context, r *Runner, mk func(chan<- T) Event) (T, error) {
	var zero T
	reply := make(chan T, 1)
	select {
	case r.posts <- mk(reply):
	case <-r.done:
		return zero, errStopped
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case v := <-reply:
		return v, nil
	case <-r.done:
		return zero, errStopped
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Peek returns the status as the loop holds it, without measuring CPU and
// memory: one round trip through the loop, for health checks and lookups.
func (r *Runner) Peek(ctx context.Context) (status.Runner, error) {
	return call(ctx, r, func(c chan<- status.Runner) Event { return SnapshotRequested{Reply: c} })
}

// Snapshot returns the status of every app and process.
func (r *Runner) Snapshot(ctx context.Context) (status.Runner, error) {
	st, err := r.Peek(ctx)
	if err != nil {
		return st, err
	}
	st.Goroutines = runtime.NumGoroutine()
	st.FDs = proc.OpenFDs()
	st.PSSBytes, st.USSBytes = -1, -1
	if m, err := proc.ProcessMemory(os.Getpid(), r.guard.PID()); err == nil {
		st.PSSBytes, st.USSBytes = m.PSS, m.USS
	}
	fillUsage(ctx, &st)
	return st, nil
}

// usageSample is how long Snapshot watches CPU use when no periodic sample
// is fresh.
const usageSample = 200 * time.Millisecond

// fillUsage measures the CPU and memory of the processes that have no
// fresh periodic sample (the periodic sampler runs only for max_memory):
// two readings usageSample apart. It runs on the caller's goroutine.
func fillUsage(ctx context.Context, st *status.Runner) {
	var pids []int
	for _, a := range st.Apps {
		for _, p := range a.Procs {
			if p.PID != 0 && (p.PSSBytes < 0 || p.CPUPercent < 0) {
				pids = append(pids, p.PID)
			}
		}
	}
	if len(pids) == 0 {
		return
	}
	u0, err := proc.GroupUsage(pids, false)
	if err != nil {
		return
	}
	t0 := time.Now()
	select {
	case <-time.After(usageSample):
	case <-ctx.Done():
		return
	}
	u1, err := proc.GroupUsage(pids, true)
	if err != nil {
		return
	}
	elapsed := time.Since(t0).Seconds()
	for i := range st.Apps {
		for j := range st.Apps[i].Procs {
			p := &st.Apps[i].Procs[j]
			b, ok := u1[p.PID]
			if !ok {
				continue
			}
			if p.PSSBytes < 0 {
				p.PSSBytes, p.USSBytes = b.Memory.PSS, b.Memory.USS
			}
			if a, ok := u0[p.PID]; ok && p.CPUPercent < 0 {
				p.CPUPercent = 100 * (b.CPU - a.CPU).Seconds() / elapsed
			}
		}
	}
}

// Reload reads the file again and rolls it out, like SIGHUP; app, when not
// empty, limits it to one app. It waits until this reload has finished,
// aborted, or been superseded, and says which.
func (r *Runner) Reload(ctx context.Context, app string) (status.ReloadResult, error) {
	return call(ctx, r, func(c chan<- status.ReloadResult) Event { return ReloadRequested{App: app, Reply: c} })
}

// Restart replaces an app's instances (instance < 0) or one, new one ready
// first, and waits for the outcome.
func (r *Runner) Restart(ctx context.Context, app string, instance int) (status.ReloadResult, error) {
	return call(ctx, r, func(c chan<- status.ReloadResult) Event {
		return RestartRequested{App: app, Instance: instance, Reply: c}
	})
}

// Scale sets the number of an app's instances: "N", "+N" or "-N".
func (r *Runner) Scale(ctx context.Context, app, spec string) (int, error) {
	res, err := call(ctx, r, func(c chan<- ScaleResult) Event { return ScaleRequested{App: app, Spec: spec, Reply: c} })
	if err != nil {
		return 0, err
	}
	return res.N, res.Err
}

// StopApp drains one app without touching the others.
func (r *Runner) StopApp(ctx context.Context, app string) error {
	err, cerr := call(ctx, r, func(c chan<- error) Event { return StopRequested{App: app, Reply: c} })
	if cerr != nil {
		return cerr
	}
	return err
}

// StartApp starts an app that was stopped or never selected.
func (r *Runner) StartApp(ctx context.Context, app string) error {
	err, cerr := call(ctx, r, func(c chan<- error) Event { return StartRequested{App: app, Reply: c} })
	if cerr != nil {
		return cerr
	}
	return err
}

// realClock arms real timers that post their event to the loop.
type realClock struct{ post func(Event) }

func (c realClock) Now() time.Time { return time.Now() }

func (c realClock) After(d time.Duration, ev Event) Timer {
	return realTimer{time.AfterFunc(d, func() { c.post(ev) })}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) Stop() { t.t.Stop() }

// loader reads the file again on its own goroutine.
type loader struct{ r *Runner }

func (l loader) Load(seq int) {
	r := l.r
	if r.opts.Load == nil {
		r.post(Loaded{Seq: seq, Err: errors.New("this runner has no file to read again")})
		return
	}
	go func() {
		cfg, err := r.opts.Load()
		ev := Loaded{Seq: seq, Config: cfg, Err: err}
		if err == nil {
			ev.Creds, ev.Err = resolveCredentials(cfg)
		}
		r.post(ev)
	}()
}
