package signals

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want syscall.Signal
		err  bool
	}{
		{"SIGTERM", syscall.SIGTERM, false},
		{"term", syscall.SIGTERM, false},
		{"Sigint", syscall.SIGINT, false},
		{" SIGUSR2 ", syscall.SIGUSR2, false},
		{"KILL", syscall.SIGKILL, false},
		{"SIGCHLD", 0, true},
		{"SIGURG", 0, true},
		{"", 0, true},
		{"SIGFOO", 0, true},
		{"15", 0, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("#%d Parse(%q): err = %v, want error %v", i, tc.in, err, tc.err)
			continue
		}
		if got != tc.want {
			t.Errorf("#%d Parse(%q) = %v, want %v", i, tc.in, got, tc.want)
		}
	}
}

func TestParseErrorListsValidNames(t *testing.T) {
	_, err := Parse("SIGFOO")
	if err == nil || !strings.Contains(err.Error(), "SIGTERM") || !strings.Contains(err.Error(), `"SIGFOO"`) {
		t.Fatalf("error %v should name the input and list valid signals", err)
	}
}

func TestNameRoundTrip(t *testing.T) {
	for _, n := range Names {
		s, err := Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		if Name(s) != n {
			t.Errorf("Name(Parse(%q)) = %q", n, Name(s))
		}
	}
	if got := Name(syscall.Signal(77)); got != "signal 77" {
		t.Errorf("Name(77) = %q", got)
	}
}

func TestTranslator(t *testing.T) {
	var tr Translator
	now := time.Unix(1000, 0)
	seq := []struct {
		sig  syscall.Signal
		kind Kind
		ok   bool
	}{
		{syscall.SIGHUP, Reload, true},
		{syscall.SIGPIPE, 0, false},
		{syscall.SIGUSR1, Forward, true},
		{syscall.SIGTTIN, ScaleUp, true},
		{syscall.SIGTTOU, ScaleDown, true},
		{syscall.SIGINT, Shutdown, true},
		{syscall.SIGTERM, Force, true},
		{syscall.SIGINT, Force, true},
	}
	for i, s := range seq {
		ev, ok := tr.Translate(s.sig, now)
		tr.Handled(now)
		now = now.Add(time.Second) // each one a send of its own
		if ok != s.ok || (ok && ev.Kind != s.kind) {
			t.Errorf("#%d Translate(%v) = %v, %v; want kind %v, %v", i, s.sig, ev, ok, s.kind, s.ok)
		}
		if ok && ev.Signal != s.sig {
			t.Errorf("#%d event carries %v, want %v", i, ev.Signal, s.sig)
		}
	}
}

// A second stop signal is Force only from another send: after the first
// was handled, and at least SameSend after it arrived.
func TestTranslatorSameSend(t *testing.T) {
	const handled = syscall.Signal(-1) // a step where the runner takes the last event
	type step struct {
		sig  syscall.Signal
		at   time.Duration // since the first signal
		want Kind          // for a signal
	}
	hungUp := func() bool { return true }
	for _, tc := range []struct {
		name   string
		hungUp func() bool
		steps  []step
	}{
		{"GNU timeout: to the child, then to its group, before the runner took the first", nil, []step{
			{syscall.SIGINT, 0, Shutdown}, {syscall.SIGINT, 20 * time.Microsecond, Repeated}, {handled, 100 * time.Microsecond, 0},
		}},
		{"the same send, the second after the first was handled", nil, []step{
			{syscall.SIGINT, 0, Shutdown}, {handled, time.Millisecond, 0}, {syscall.SIGINT, 2 * time.Millisecond, Repeated},
		}},
		{"the same send, the second late on a loaded machine", nil, []step{
			{syscall.SIGTERM, 0, Shutdown}, {handled, time.Millisecond, 0}, {syscall.SIGTERM, SameSend - time.Millisecond, Repeated},
		}},
		{"a second press of Ctrl-C", nil, []step{
			{syscall.SIGINT, 0, Shutdown}, {handled, time.Millisecond, 0}, {syscall.SIGINT, 800 * time.Millisecond, Force},
		}},
		{"exactly SameSend later is a new send", nil, []step{
			{syscall.SIGINT, 0, Shutdown}, {handled, time.Millisecond, 0}, {syscall.SIGINT, SameSend, Force},
		}},
		{"another signal, another send", nil, []step{
			{syscall.SIGTERM, 0, Shutdown}, {handled, time.Millisecond, 0}, {syscall.SIGINT, time.Second, Force},
		}},
		{"a runner slow to take the first: what came before is the same send", nil, []step{
			{syscall.SIGINT, 0, Shutdown}, {syscall.SIGINT, 2 * time.Second, Repeated}, {handled, 3 * time.Second, 0},
			{syscall.SIGINT, 3*time.Second + time.Millisecond, Force},
		}},
		{"a repeat does not restart the window", nil, []step{
			{syscall.SIGINT, 0, Shutdown}, {syscall.SIGINT, 0, Repeated}, {handled, time.Millisecond, 0},
			{handled, 2 * time.Millisecond, 0}, {syscall.SIGINT, 400 * time.Millisecond, Repeated},
			{syscall.SIGINT, 600 * time.Millisecond, Force},
		}},
		{"the terminal hung up: SIGHUP and the shell's SIGTERM are one send", hungUp, []step{
			{syscall.SIGHUP, 0, HangUp}, {syscall.SIGTERM, time.Millisecond, Repeated}, {handled, 2 * time.Millisecond, 0},
			{syscall.SIGCONT, 3 * time.Millisecond, Forward},
		}},
		{"other signals are not stops", nil, []step{
			{syscall.SIGHUP, 0, Reload}, {handled, 0, 0}, {syscall.SIGUSR2, time.Millisecond, Forward}, {handled, time.Millisecond, 0},
			{syscall.SIGTERM, 2 * time.Millisecond, Shutdown}, {handled, 3 * time.Millisecond, 0},
			{syscall.SIGHUP, 4 * time.Millisecond, Reload}, {syscall.SIGTTIN, 5 * time.Millisecond, ScaleUp},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := Translator{HungUp: tc.hungUp}
			t0 := time.Unix(1000, 0)
			for i, s := range tc.steps {
				if s.sig == handled {
					tr.Handled(t0.Add(s.at))
					continue
				}
				ev, ok := tr.Translate(s.sig, t0.Add(s.at))
				if !ok || ev.Kind != s.want || ev.Signal != s.sig {
					t.Errorf("step %d: %v at +%v = %+v, %v; want kind %v", i, s.sig, s.at, ev, ok, s.want)
				}
			}
		})
	}
}
