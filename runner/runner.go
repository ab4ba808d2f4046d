// Package runner supervises the instances of every app in a config: it
// starts them in dependency order, restarts what crashes under each app's
// policy, replaces instances one by one on reload, and drains everything on
// shutdown.
//
// One goroutine, the loop in Run, owns all of the runner's state. Everything
// else — process exits, sd_notify messages, timers, probes, signals and
// control requests — reaches it as a closure posted to that loop, so no
// state is shared and nothing needs a lock.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
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
	// started too); the others stay inactive until started by a command.
	Only []string
	// Exe is the clusterrun binary, used as the LISTEN_PID exec shim.
	Exe string
	// RuntimeDir is a private directory for the instances' notify sockets.
	RuntimeDir string
	// Reaper starts and waits for every process. There must be only one per
	// process, so the caller owns it.
	Reaper *proc.Reaper
}

type phase int

const (
	running phase = iota
	draining
	forcing
)

// Runner supervises the apps of one config.
type Runner struct {
	opts Options
	log  *logmux.Mux
	lset *listeners.Set
	// devnull is every instance's stdin.
	devnull *os.File
	// preload is the path of the Node preload script (listeners.NodePreload).
	preload string

	posts chan func()
	done  chan struct{}

	// Everything below is owned by the loop goroutine.
	cfg      *hclconfig.Config
	apps     []*app
	live     map[*process]bool
	nextID   uint64
	releases int
	phase    phase
	exitCode int
	// killed records that some instance had to be SIGKILLed at its stop
	// timeout, which makes the drain unclean.
	killed bool
	// loading is true while a reload reads the file off the loop.
	loading bool
	// reloadAgain remembers a reload asked for while one was loading.
	reloadAgain bool
	finished    bool
	// reloadWaiters are Reload callers waiting for the outcome, which
	// reloadNotes and reloadErr collect.
	reloadWaiters []chan reloadResult
	reloadNotes   []string
	reloadErr     error
}

// New binds every listener and prepares the apps; nothing is started until
// Run. An error means nothing was started.
func New(opts Options) (*Runner, error) {
	if opts.Reaper == nil {
		return nil, errors.New("runner: no reaper")
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
		posts:   make(chan func(), 64),
		done:    make(chan struct{}),
		cfg:     opts.Config,
		live:    make(map[*process]bool),
	}
	if err := r.writePreload(creds); err != nil {
		devnull.Close()
		return nil, err
	}
	if err := r.lset.Bind(opts.Config.Listeners); err != nil {
		devnull.Close()
		return nil, err
	}
	only, err := closure(opts.Config, opts.Only)
	if err != nil {
		r.lset.Close()
		devnull.Close()
		return nil, err
	}
	for _, a := range opts.Config.Apps {
		ap := r.newApp(a, opts.Config, creds[a.Name])
		ap.active = only == nil || only[a.Name]
		r.apps = append(r.apps, ap)
	}
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

// closure returns the named apps and everything they depend on, or nil
// when names is empty (meaning all).
func closure(cfg *hclconfig.Config, names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := make(map[string]bool)
	var add func(string) error
	add = func(n string) error {
		if set[n] {
			return nil
		}
		a := cfg.App(n)
		if a == nil {
			return fmt.Errorf("no app %q in %s", n, cfg.Path)
		}
		set[n] = true
		for _, d := range a.DependsOn {
			if err := add(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// Addrs describes where each listener of the current config listens, for
// the start-up banner.
func (r *Runner) Addrs() []string {
	var out []string
	for _, l := range r.cfg.Listeners {
		out = append(out, fmt.Sprintf("%s on %s (%s)", l.Name, r.lset.Addr(l), l.Mode))
	}
	return out
}

// Run starts the apps and supervises them until they have all stopped. It
// returns the exit code: 0 for a clean shutdown, 1 when a required app gave
// up, an instance had to be killed, or everything ended with a failure.
func (r *Runner) Run() int {
	defer r.cleanup()
	r.declare()
	for _, a := range r.Addrs() {
		r.log.Printf("listening: %s", a)
	}
	r.afterChange()
	for !r.finished {
		select {
		case fn := <-r.posts:
			fn()
		case ev := <-r.opts.Signals:
			r.onSignal(ev)
		}
		r.afterChange()
	}
	return r.exitCode
}

func (r *Runner) cleanup() {
	close(r.done)
	for _, w := range r.reloadWaiters {
		w <- reloadResult{err: errStopped}
	}
	r.lset.Close()
	r.devnull.Close()
}

// post hands fn to the loop. After the loop has ended it drops fn: whatever
// it was about no longer matters.
func (r *Runner) post(fn func()) {
	select {
	case r.posts <- fn:
	case <-r.done:
	}
}

// errStopped is returned by calls made after the runner finished.
var errStopped = errors.New("the runner has stopped")

// call runs fn on the loop and waits for it, for control requests.
func (r *Runner) call(ctx context.Context, fn func()) error {
	ran := make(chan struct{})
	select {
	case r.posts <- func() { fn(); close(ran) }:
	case <-r.done:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-r.done:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) onSignal(ev signals.Event) {
	switch ev.Kind {
	case signals.Shutdown:
		r.log.Printf("received %s: stopping every app (send it again to kill at once)", signals.Name(ev.Signal))
		r.shutdown(0)
	case signals.Force:
		r.log.Printf("received %s again: killing every instance now", signals.Name(ev.Signal))
		r.force()
	case signals.Reload:
		r.log.Printf("received SIGHUP: reloading %s", r.cfg.Path)
		r.reload("")
	case signals.ScaleUp, signals.ScaleDown:
		r.scaleListening(ev.Kind == signals.ScaleUp)
	case signals.Forward:
		r.forward(ev.Signal)
	}
}

// app returns the app called name, or nil.
func (r *Runner) app(name string) *app {
	for _, a := range r.apps {
		if a.name == name {
			return a
		}
	}
	return nil
}

// declare tells the log which apps exist and how wide their labels are.
func (r *Runner) declare() {
	var ls []logmux.App
	for _, a := range r.apps {
		ls = append(ls, logmux.App{Name: a.name, Instances: max(len(a.slots), a.rel.app.Instances)})
	}
	r.log.Declare(ls)
}

// afterChange runs after every event: it moves everything forward that the
// event may have unblocked, and decides when the runner is finished.
func (r *Runner) afterChange() {
	switch r.phase {
	case running:
		r.startWaitingApps()
		r.advanceRollouts()
		r.announceReady()
		if a := r.requiredFailure(); a != nil {
			r.log.Printf("%s is required and gave up: stopping every app", a.name)
			r.shutdown(1)
			r.drainStep()
		}
	case draining, forcing:
		r.drainStep()
	}
	r.forgetRemoved()
	r.settleReloads()
	r.checkFinished()
}

func (r *Runner) checkFinished() {
	if len(r.live) > 0 || r.loading {
		return
	}
	if r.phase != running {
		if r.killed && r.exitCode == 0 {
			r.exitCode = 1
		}
		r.log.Printf("all instances stopped; exiting with status %d", r.exitCode)
		r.finished = true
		return
	}
	// Running with nothing alive: finished only if nothing can start again.
	var failed []string
	for _, a := range r.apps {
		if a.userStopped || a.anyBackoff() || a.rollout != nil {
			return
		}
		if a.active && a.started && len(a.slots) == 0 {
			return // scaled to zero: it may be scaled up again
		}
		if a.active && !a.started && r.depsCanStillBeMet(a) {
			return
		}
		if a.started && a.anyFailed() {
			failed = append(failed, a.name)
		}
	}
	if len(failed) > 0 {
		r.exitCode = 1
		r.log.Printf("nothing left running (%s failed); exiting with status 1", strings.Join(failed, ", "))
	} else {
		r.log.Printf("every app has finished; exiting")
	}
	r.finished = true
}

// forward passes a signal to every live instance's process group.
func (r *Runner) forward(sig syscall.Signal) {
	n := 0
	for p := range r.live {
		if err := proc.KillGroup(p.pid, sig); err == nil {
			n++
		}
	}
	r.log.Printf("received %s: forwarded to %d instances", signals.Name(sig), n)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
