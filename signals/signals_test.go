package signals

import (
	"strings"
	"syscall"
	"testing"
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
		ev, ok := tr.Translate(s.sig)
		if ok != s.ok || (ok && ev.Kind != s.kind) {
			t.Errorf("#%d Translate(%v) = %v, %v; want kind %v, %v", i, s.sig, ev, ok, s.kind, s.ok)
		}
		if ok && ev.Signal != s.sig {
			t.Errorf("#%d event carries %v, want %v", i, ev.Signal, s.sig)
		}
	}
}
