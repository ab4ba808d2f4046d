package runner

import (
	"fmt"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// rollout is an app's rolling replacement by a new release.
type rollout struct {
	target *release
	// queue holds the slot numbers still to replace, in order.
	queue []int
	// inflight are the slots whose replacement is starting.
	inflight map[*slot]bool
	// waiting: a dependency's rollout has not finished yet.
	waiting  bool
	started  time.Time
	replaced int
	total    int
}

// reload reads the file again off the loop and applies it when it is valid;
// only, when set, limits the rollout to that app.
func (r *Runner) reload(only string) {
	if r.phase != running {
		return
	}
	if r.loading {
		r.reloadAgain = true
		return
	}
	if r.opts.Load == nil {
		r.log.Printf("reload: this runner has no file to read again")
		return
	}
	r.loading = true
	go func() {
		cfg, err := r.opts.Load()
		r.post(func() { r.onLoaded(cfg, err, only) })
	}()
}

func (r *Runner) onLoaded(cfg *hclconfig.Config, err error, only string) {
	r.loading = false
	defer func() {
		if r.reloadAgain {
			r.reloadAgain = false
			r.reload("")
		}
	}()
	if r.phase != running {
		return
	}
	if err != nil {
		r.reloadErr = err
		r.log.Printf("reload rejected; everything keeps running as it was:")
		for _, line := range strings.Split(err.Error(), "\n") {
			r.log.Printf("  %s", line)
		}
		return
	}
	if err := r.apply(cfg, only); err != nil {
		r.reloadErr = err
		r.log.Printf("reload rejected; everything keeps running as it was: %v", err)
	}
}

// apply rolls cfg out: new apps start, removed apps drain, and every app
// is replaced instance by instance. Nothing changes if an error is returned.
func (r *Runner) apply(cfg *hclconfig.Config, only string) error {
	if only != "" && cfg.App(only) == nil {
		return fmt.Errorf("app %q is no longer in %s", only, cfg.Path)
	}
	creds, err := resolveCredentials(cfg)
	if err != nil {
		return err
	}
	if err := r.lset.Bind(cfg.Listeners); err != nil {
		return err
	}
	if only != "" {
		a := r.app(only)
		if a == nil {
			return fmt.Errorf("app %q is not running; use start", only)
		}
		r.beginRollout(a, r.newRelease(cfg.App(only), cfg, creds[only]))
		return nil
	}
	r.cfg = cfg
	var apps []*app
	for _, ca := range cfg.Apps {
		rel := r.newRelease(ca, cfg, creds[ca.Name])
		a := r.app(ca.Name)
		if a == nil || a.removed {
			a = &app{name: ca.Name, rel: rel, active: true}
			r.log.Printf("%s: new app", a.name)
		} else {
			r.beginRollout(a, rel)
		}
		apps = append(apps, a)
	}
	for _, a := range r.apps {
		if cfg.App(a.name) == nil && !a.removed {
			r.log.Printf("%s: removed from %s; stopping it", a.name, cfg.Path)
			a.removed = true
			a.active = false
			for _, s := range a.slots {
				s.retired = true
			}
			r.stopApp(a)
		}
		if a.removed {
			apps = append(apps, a) // kept until drained
		}
	}
	r.apps = apps
	r.declare()
	return nil
}

// beginRollout starts replacing a's instances with rel. An app that is not
// running just takes rel for its next start.
func (r *Runner) beginRollout(a *app, rel *release) {
	if a.rollout != nil {
		r.abortRollout(a, "a newer reload replaces it")
	}
	if !a.active || !a.started {
		// Its next start takes the file's instance count too.
		a.rel = rel
		for _, s := range a.slots {
			s.retired = true
		}
		a.slots = nil
		return
	}
	ro := &rollout{target: rel, inflight: make(map[*slot]bool), waiting: true, started: time.Now()}
	for i := 0; i < len(a.slots) && i < rel.app.Instances; i++ {
		ro.queue = append(ro.queue, i)
	}
	ro.total = len(ro.queue)
	a.rollout = ro
}

// advanceRollouts starts as many replacements as each app's reload.parallel
// allows, once the apps it depends on have finished theirs.
func (r *Runner) advanceRollouts() {
	for _, a := range r.apps {
		ro := a.rollout
		if ro == nil {
			continue
		}
		if ro.waiting {
			if !r.depsRolledOut(a) {
				continue
			}
			ro.waiting = false
			r.log.Printf("%s: reloading %d instances, %d at a time", a.name, ro.total, max(1, ro.target.app.Reload.Parallel))
		}
		for len(ro.inflight) < max(1, ro.target.app.Reload.Parallel) && len(ro.queue) > 0 {
			i := ro.queue[0]
			ro.queue = ro.queue[1:]
			if i >= len(a.slots) {
				continue
			}
			r.replaceSlot(a, a.slots[i])
			if a.rollout != ro {
				return // the replacement failed at once and aborted it
			}
		}
		if len(ro.queue) == 0 && len(ro.inflight) == 0 {
			r.finishRollout(a)
		}
	}
}

// depsRolledOut: none of the apps a depends on is still reloading. A
// dependency whose own reload was aborted aborts this one too.
func (r *Runner) depsRolledOut(a *app) bool {
	for _, d := range a.rollout.target.app.DependsOn {
		da := r.app(d)
		if da == nil {
			continue
		}
		if da.rollout != nil {
			return false
		}
		if !da.ready() && !da.done() {
			r.abortRollout(a, fmt.Sprintf("it depends on %s, which is not ready", d))
			return false
		}
	}
	return true
}

// replaceSlot starts the new release in one slot: next to the serving
// process when there is one, or in its place when the slot is down.
func (r *Runner) replaceSlot(a *app, s *slot) {
	ro := a.rollout
	if s.cur == nil || s.state != slotRunning {
		// Nothing serves here (backoff, failed, done): start the new release
		// directly; a failed slot gets a fresh restart budget.
		s.rel = ro.target
		s.crashes, s.consecutive = nil, 0
		ro.inflight[s] = true
		r.startSlot(s)
		return
	}
	if s.next != nil {
		// A replacement for a dying instance is already starting with the
		// old release; let it finish, then replace it like the rest.
		ro.queue = append(ro.queue, s.index)
		return
	}
	p, err := r.spawn(s, ro.target)
	if err != nil {
		r.abortRollout(a, fmt.Sprintf("cannot start the new %s: %v", s.label(), err))
		return
	}
	s.next = p
	ro.inflight[s] = true
}

func (r *Runner) finishRollout(a *app) {
	ro := a.rollout
	a.rollout = nil
	a.rel = ro.target
	msg := fmt.Sprintf("%s: reload complete: %d of %d instances replaced in %s", a.name, ro.replaced, ro.total, human(time.Since(ro.started)))
	r.reloadNotes = append(r.reloadNotes, msg)
	r.log.Printf("%s", msg)
	r.resize(a, ro.target.app.Instances, "instances = "+itoa(ro.target.app.Instances)+" in the file")
	r.retainListeners()
}

// abortRollout stops a's replacements that are still starting; the
// instances serving now keep serving.
func (r *Runner) abortRollout(a *app, why string) {
	ro := a.rollout
	if ro == nil {
		return
	}
	a.rollout = nil
	for s := range ro.inflight {
		if s.next != nil && s.next.rel == ro.target {
			p := s.next
			s.next = nil // neither cur nor next: it drains on its own
			r.stopProc(p, true)
		}
	}
	msg := fmt.Sprintf("%s: reload aborted: %s; %d of %d instances were replaced, the others keep serving the previous release", a.name, why, ro.replaced, ro.total)
	r.reloadNotes = append(r.reloadNotes, msg)
	if r.reloadErr == nil {
		r.reloadErr = fmt.Errorf("reload of %s aborted", a.name)
	}
	r.log.Printf("%s", msg)
	r.retainListeners()
}

// resize changes the number of a's instances: new slots start at once,
// surplus slots (the highest numbers) drain.
func (r *Runner) resize(a *app, n int, why string) {
	cur := len(a.slots)
	if n == cur || !a.started {
		return
	}
	r.log.Printf("%s: scaling from %d to %d instances (%s)", a.name, cur, n, why)
	for i := cur; i < n; i++ {
		rel := a.rel
		if a.rollout != nil {
			rel = a.rollout.target
		}
		s := &slot{app: a, index: i, rel: rel}
		a.slots = append(a.slots, s)
		if a.active {
			r.startSlot(s)
		}
	}
	for i := cur - 1; i >= n; i-- {
		s := a.slots[i]
		s.retired = true
		r.stopSlot(s)
		if a.rollout != nil {
			delete(a.rollout.inflight, s)
		}
	}
	if n < cur {
		a.slots = a.slots[:n]
	} else {
		a.announced = false
		a.startedAt = time.Now()
	}
	r.declare()
}

// scaleListening is SIGTTIN/SIGTTOU: one instance more or fewer of every
// app that has listeners (unicorn's convention).
func (r *Runner) scaleListening(up bool) {
	for _, a := range r.apps {
		if len(a.rel.listeners) == 0 || !a.started || !a.active || a.removed {
			continue
		}
		n := len(a.slots) + 1
		sig := "SIGTTIN"
		if !up {
			n, sig = len(a.slots)-1, "SIGTTOU"
		}
		if n < 0 {
			continue
		}
		r.resize(a, n, sig)
	}
}
