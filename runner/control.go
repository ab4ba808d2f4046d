package runner

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The methods in this file are safe to call from any goroutine: each runs
// its work on the loop and waits for it.

// InstanceStatus describes one process (or one instance number that has
// none at the moment).
type InstanceStatus struct {
	App      string `json:"app"`
	Instance int    `json:"instance"`
	// PID is 0 when no process runs for the instance.
	PID int `json:"pid"`
	// State is starting, ready, stopping, backoff, failed, done, stopped or
	// idle.
	State string `json:"state"`
	// Role is "serving", "replacement" (starting next to a serving one in a
	// reload), "draining" (replaced, finishing its requests), or "" for an
	// instance number with no process (backoff, done, failed, stopped).
	Role     string    `json:"role"`
	Release  int       `json:"release"`
	Restarts int       `json:"restarts"`
	Started  time.Time `json:"started,omitzero"`
	// Message is the instance's last sd_notify STATUS=.
	Message string `json:"message,omitempty"`
}

// AppStatus describes one app.
type AppStatus struct {
	Name      string           `json:"name"`
	State     string           `json:"state"`
	Instances int              `json:"instances"`
	Listeners []string         `json:"listeners"`
	Procs     []InstanceStatus `json:"procs"`
}

// Status is a snapshot of the whole runner.
type Status struct {
	PID    int    `json:"pid"`
	Config string `json:"config"`
	// Goroutines is the runner's own count, to spot leaks.
	Goroutines int         `json:"goroutines"`
	Apps       []AppStatus `json:"apps"`
}

// Snapshot returns the current state of every app and process.
func (r *Runner) Snapshot(ctx context.Context) (Status, error) {
	var st Status
	err := r.call(ctx, func() { st = r.snapshot() })
	return st, err
}

func (r *Runner) snapshot() Status {
	st := Status{PID: os.Getpid(), Config: r.cfg.Path, Goroutines: runtime.NumGoroutine()}
	for _, a := range r.apps {
		as := AppStatus{Name: a.name, State: a.state(), Instances: len(a.slots), Listeners: []string{}}
		if !a.started {
			as.Instances = a.rel.app.Instances
		}
		for _, l := range a.rel.listeners {
			as.Listeners = append(as.Listeners, l.Name+"="+r.lset.Addr(l))
		}
		seen := make(map[*process]bool)
		for _, s := range a.slots {
			if s.cur == nil {
				as.Procs = append(as.Procs, InstanceStatus{App: a.name, Instance: s.index, State: s.state.String(), Release: s.rel.gen, Restarts: s.restarts})
			}
			for _, p := range []*process{s.cur, s.next} {
				if p == nil {
					continue
				}
				seen[p] = true
				role := "serving"
				if p == s.next {
					role = "replacement"
				}
				as.Procs = append(as.Procs, procStatus(p, role))
			}
		}
		for p := range r.live {
			if p.slot.app == a && !seen[p] {
				as.Procs = append(as.Procs, procStatus(p, "draining"))
			}
		}
		st.Apps = append(st.Apps, as)
	}
	return st
}

func procStatus(p *process, role string) InstanceStatus {
	return InstanceStatus{
		App: p.slot.app.name, Instance: p.slot.index, PID: p.pid, State: p.state.String(), Role: role,
		Release: p.rel.gen, Restarts: p.slot.restarts, Started: p.started, Message: p.status,
	}
}

// Reload reads the file again and rolls it out, like SIGHUP; app, when
// not empty, limits it to one app. It waits until every rollout it started
// has finished or aborted, and returns a summary, or the reason the file was
// rejected.
func (r *Runner) Reload(ctx context.Context, app string) (string, error) {
	res := make(chan reloadResult, 1)
	if err := r.call(ctx, func() {
		if r.phase != running {
			res <- reloadResult{err: errStopped}
			return
		}
		r.reloadWaiters = append(r.reloadWaiters, res)
		r.reload(app)
	}); err != nil {
		return "", err
	}
	select {
	case v := <-res:
		return v.summary, v.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type reloadResult struct {
	summary string
	err     error
}

// settleReloads answers Reload callers once no reload is loading or
// rolling out any more.
func (r *Runner) settleReloads() {
	if len(r.reloadWaiters) == 0 || r.loading {
		return
	}
	for _, a := range r.apps {
		if a.rollout != nil {
			return
		}
	}
	res := reloadResult{summary: strings.Join(r.reloadNotes, "\n"), err: r.reloadErr}
	if res.summary == "" && res.err == nil {
		res.summary = "reloaded"
	}
	for _, w := range r.reloadWaiters {
		w <- res
	}
	r.reloadWaiters, r.reloadNotes, r.reloadErr = nil, nil, nil
}

// Restart hard-restarts an app (instance < 0) or one instance: stop, then
// start again, without waiting for a replacement.
func (r *Runner) Restart(ctx context.Context, app string, instance int) error {
	var err error
	cerr := r.call(ctx, func() { err = r.restart(app, instance) })
	if cerr != nil {
		return cerr
	}
	return err
}

func (r *Runner) restart(name string, instance int) error {
	a, err := r.runningApp(name)
	if err != nil {
		return err
	}
	if instance >= len(a.slots) {
		return fmt.Errorf("%s has instances 0 to %d", name, len(a.slots)-1)
	}
	for _, s := range a.slots {
		if instance >= 0 && s.index != instance {
			continue
		}
		if s.cur == nil {
			s.crashes, s.consecutive = nil, 0
			r.startSlot(s)
			continue
		}
		if s.next != nil {
			r.stopProc(s.next, true)
			s.next = nil
		}
		s.cur.restartOnExit = true
		r.stopProc(s.cur, true)
	}
	r.log.Printf("%s: restarting %s", name, instanceWord(instance))
	return nil
}

func instanceWord(i int) string {
	if i < 0 {
		return "every instance"
	}
	return "instance " + strconv.Itoa(i)
}

// Scale sets the number of an app's instances: "N", "+N" or "-N". It
// returns the new count.
func (r *Runner) Scale(ctx context.Context, app, spec string) (int, error) {
	var n int
	var err error
	cerr := r.call(ctx, func() { n, err = r.scale(app, spec) })
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}

func (r *Runner) scale(name, spec string) (int, error) {
	a, err := r.runningApp(name)
	if err != nil {
		return 0, err
	}
	n, err := ParseScale(spec, len(a.slots))
	if err != nil {
		return 0, err
	}
	r.resize(a, n, "clusterrun scale")
	return n, nil
}

// ParseScale reads "N", "+N" or "-N" relative to cur.
func ParseScale(spec string, cur int) (int, error) {
	v, err := strconv.Atoi(spec)
	if err != nil {
		return 0, fmt.Errorf("cannot scale to %q: want N, +N or -N", spec)
	}
	n := v
	if strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-") {
		n = cur + v
	}
	if n < 0 {
		return 0, fmt.Errorf("cannot scale to %d instances", n)
	}
	return n, nil
}

// StopApp drains one app without touching the others.
func (r *Runner) StopApp(ctx context.Context, app string) error {
	var err error
	cerr := r.call(ctx, func() {
		a := r.app(app)
		switch {
		case a == nil || a.removed:
			err = fmt.Errorf("no app %q", app)
		case !a.active:
			err = fmt.Errorf("%s is not running", app)
		default:
			r.log.Printf("%s: stopping (clusterrun stop)", app)
			a.active = false
			a.userStopped = true
			r.stopApp(a)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// StartApp starts an app that was stopped or never selected; it waits for
// its dependencies like at start-up.
func (r *Runner) StartApp(ctx context.Context, app string) error {
	var err error
	cerr := r.call(ctx, func() {
		a := r.app(app)
		switch {
		case a == nil || a.removed:
			err = fmt.Errorf("no app %q", app)
		case a.active:
			err = fmt.Errorf("%s is already running", app)
		case r.phase != running:
			err = errStopped
		default:
			a.active = true
			a.userStopped = false
			a.started = false
			r.log.Printf("%s: starting (clusterrun start)", app)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

func (r *Runner) runningApp(name string) (*app, error) {
	a := r.app(name)
	switch {
	case a == nil || a.removed:
		return nil, fmt.Errorf("no app %q", name)
	case !a.active || !a.started:
		return nil, fmt.Errorf("%s is not running (state %s)", name, a.state())
	case r.phase != running:
		return nil, errStopped
	}
	return a, nil
}
