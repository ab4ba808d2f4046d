package signals

import (
	"os"
	"os/signal"
	"syscall"
)

// Kind is what the runner should do about a received signal.
type Kind int

const (
	// Shutdown asks for a graceful drain (the first SIGTERM or SIGINT).
	Shutdown Kind = iota
	// Force asks to kill everything at once (a second SIGTERM or SIGINT).
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
)

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

// Watch starts translating signals into events. The caller must call Stop.
func Watch() *Watcher {
	w := &Watcher{
		// Buffered: package signal drops a signal it cannot deliver at once.
		raw:    make(chan os.Signal, 16),
		events: make(chan Event, 16),
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

func (w *Watcher) run() {
	defer close(w.exited)
	t := Translator{HungUp: w.tty.hungUp}
	for {
		select {
		case <-w.done:
			return
		case s := <-w.raw:
			ev, ok := t.Translate(s.(syscall.Signal))
			if !ok {
				continue
			}
			select {
			case w.events <- ev:
			case <-w.done:
				return
			}
		}
	}
}

// Translator turns a sequence of signals into events; it remembers whether a
// shutdown was already asked for, so that the second one means Force.
type Translator struct {
	// HungUp reports whether the controlling terminal has hung up; nil
	// means there is none to hang up.
	HungUp   func() bool
	stopping bool
}

// Translate returns the event for sig, and false for a signal that needs no
// action (SIGPIPE).
func (t *Translator) Translate(sig syscall.Signal) (Event, bool) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		return t.stop(Shutdown, sig), true
	case syscall.SIGHUP:
		if t.HungUp != nil && t.HungUp() {
			return t.stop(HangUp, sig), true
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

// stop returns the event for a request to stop, of kind Shutdown or
// HangUp: Force once a stop was already asked for.
func (t *Translator) stop(kind Kind, sig syscall.Signal) Event {
	if t.stopping {
		return Event{Kind: Force, Signal: sig}
	}
	t.stopping = true
	return Event{Kind: kind, Signal: sig}
}
