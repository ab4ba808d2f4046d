package signals

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Kind is what the runner should do about a received signal.
type Kind int

const (
	// Shutdown asks for a graceful drain (the first SIGTERM or SIGINT).
	Shutdown Kind = iota
	// Force asks to kill everything at once (a second SIGTERM or SIGINT,
	// from another send: see Translator).
	Force
	// Reload asks for a rolling reload of the config file (SIGHUP).
	Reload
	// ScaleUp asks for one more instance of every app with listeners (SIGTTIN).
	ScaleUp
	// ScaleDown asks for one fewer instance of every app with listeners (SIGTTOU).
	ScaleDown
	// Forward asks to pass Signal on to every instance.
	Forward
	// HangUp asks for a graceful drain because the controlling terminal
	// hung up (the window was closed): a SIGHUP that means what it means to
	// foreman, not "reload".
	HangUp
	// Repeated is a stop signal that came with the one before it, in the
	// same send (see Translator): it changes nothing, and the runner only
	// says so.
	Repeated
)

// SameSend is how soon after the first stop signal a second one is taken
// as part of the same send, even once the first was handled. GNU timeout
// signals its child and then its own process group, which holds the child
// too; a shell's job control can do the same: one intent, two deliveries,
// microseconds apart (more on a loaded machine). A person pressing Ctrl-C
// again in earnest does it after reading the runner's line about the first.
const SameSend = 500 * time.Millisecond

// Event is one received signal translated into an intent.
type Event struct {
	Kind   Kind
	Signal syscall.Signal
}

// forwarded are passed on to every instance's process group. SIGPIPE is
// watched only so that a closed stdout turns into EPIPE instead of killing
// the runner, and is not forwarded.
var forwarded = []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT, syscall.SIGWINCH, syscall.SIGALRM}

// Watcher delivers the runner's signals as events until Stop is called.
type Watcher struct {
	raw    chan os.Signal
	events chan Event
	done   chan struct{}
	exited chan struct{}
	tty    *terminal
}

// maxQueued bounds the signals received and not yet translated: a flood
// beyond it is dropped, as package signal itself drops what it cannot
// deliver.
const maxQueued = 64

// Watch starts translating signals into events. The caller must call Stop.
func Watch() *Watcher {
	w := &Watcher{
		// Buffered: package signal drops a signal it cannot deliver at once.
		raw: make(chan os.Signal, 16),
		// Unbuffered: an event is handed over when the runner takes it,
		// which is when the Translator counts it handled.
		events: make(chan Event),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		tty:    openTerminal(),
	}
	watched := append([]os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE}, forwarded...)
	signal.Notify(w.raw, watched...)
	go w.run()
	return w
}

// Events returns the channel of translated signals.
func (w *Watcher) Events() <-chan Event { return w.events }

// Stop stops watching; signals received afterwards get their default action.
func (w *Watcher) Stop() {
	signal.Stop(w.raw)
	close(w.done)
	<-w.exited
	w.tty.close()
}

// arrival is a received signal and when it was received.
type arrival struct {
	sig syscall.Signal
	at  time.Time
}

// run stamps each signal when it arrives, and translates it only once the
// runner has taken the event before it, so that the Translator knows
// whether it came before or after that one was handled.
func (w *Watcher) run() {
	defer close(w.exited)
	t := Translator{HungUp: w.tty.hungUp}
	var (
		queue   []arrival
		next    Event
		pending bool // next waits for the runner
	)
	for {
		if !pending && len(queue) > 0 {
			a := queue[0]
			queue = queue[1:]
			next, pending = t.Translate(a.sig, a.at)
			continue
		}
		var out chan<- Event
		if pending {
			out = w.events
		}
		select {
		case <-w.done:
			return
		case s := <-w.raw:
			if len(queue) < maxQueued {
				queue = append(queue, arrival{s.(syscall.Signal), time.Now()})
			}
		case out <- next:
			pending = false
			t.Handled(time.Now())
		}
	}
}

// Translator turns a sequence of signals into events. It remembers the
// first request to stop, so that a later one means Force, but only when
// it is a new send: one that arrived after the first was handled (the
// runner took its event) and at least SameSend after it. Anything else is
// the same send delivered twice, and Repeated.
type Translator struct {
	// HungUp reports whether the controlling terminal has hung up; nil
	// means there is none to hang up.
	HungUp func() bool

	stopping bool
	first    time.Time // when the first stop signal arrived
	handled  time.Time // when the runner took its event; zero until then
}

// Translate returns the event for sig, received at time at, and false for
// a signal that needs no action (SIGPIPE).
func (t *Translator) Translate(sig syscall.Signal, at time.Time) (Event, bool) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		return t.stop(Shutdown, sig, at), true
	case syscall.SIGHUP:
		if t.HungUp != nil && t.HungUp() {
			return t.stop(HangUp, sig, at), true
		}
		return Event{Kind: Reload, Signal: sig}, true
	case syscall.SIGTTIN:
		return Event{Kind: ScaleUp, Signal: sig}, true
	case syscall.SIGTTOU:
		return Event{Kind: ScaleDown, Signal: sig}, true
	case syscall.SIGPIPE:
		return Event{}, false
	}
	return Event{Kind: Forward, Signal: sig}, true
}

// Handled records that the runner took the last event at time at.
func (t *Translator) Handled(at time.Time) {
	if t.stopping && t.handled.IsZero() {
		t.handled = at
	}
}

// stop returns the event for a request to stop, of kind Shutdown or
// HangUp the first time; then Force for a new send, Repeated for the same.
func (t *Translator) stop(kind Kind, sig syscall.Signal, at time.Time) Event {
	if !t.stopping {
		t.stopping, t.first = true, at
		return Event{Kind: kind, Signal: sig}
	}
	if t.handled.IsZero() || at.Before(t.handled) || at.Sub(t.first) < SameSend {
		return Event{Kind: Repeated, Signal: sig}
	}
	return Event{Kind: Force, Signal: sig}
}
