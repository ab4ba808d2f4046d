package runner

import (
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
)

func TestBackoffDelay(t *testing.T) {
	ms := time.Millisecond
	for i, tc := range []struct {
		base, max   time.Duration
		consecutive int
		jitter      float64
		want        time.Duration
	}{
		{100 * ms, 30 * time.Second, 1, 0, 100 * ms},
		{100 * ms, 30 * time.Second, 2, 0, 200 * ms},
		{100 * ms, 30 * time.Second, 4, 0, 800 * ms},
		{100 * ms, 30 * time.Second, 20, 0, 30 * time.Second},
		{100 * ms, 30 * time.Second, 1000, 0, 30 * time.Second},
		{100 * ms, 300 * ms, 3, 0, 300 * ms},
		{100 * ms, 30 * time.Second, 1, 0.5, 105 * ms},
		{100 * ms, 30 * time.Second, 3, 0.999, 440 * ms},
		{0, 30 * time.Second, 5, 0.5, 0},
	} {
		if got := backoffDelay(tc.base, tc.max, tc.consecutive, tc.jitter); got != tc.want {
			t.Errorf("#%d backoffDelay(%v, %v, %d, %v) = %v, want %v", i, tc.base, tc.max, tc.consecutive, tc.jitter, got, tc.want)
		}
	}
}

func TestRestarts(t *testing.T) {
	ok, fail, killed := proc.Status{}, proc.Status{Code: 1}, proc.Status{Code: 137, Signal: 9}
	for i, tc := range []struct {
		p    hclconfig.RestartPolicy
		st   proc.Status
		want bool
	}{
		{hclconfig.RestartAlways, ok, true},
		{hclconfig.RestartAlways, fail, true},
		{hclconfig.RestartOnFailure, ok, false},
		{hclconfig.RestartOnFailure, fail, true},
		{hclconfig.RestartOnFailure, killed, true},
		{hclconfig.RestartNever, fail, false},
		{hclconfig.RestartNever, killed, false},
	} {
		if got := restarts(tc.p, tc.st); got != tc.want {
			t.Errorf("#%d restarts(%s, %+v) = %v", i, tc.p, tc.st, got)
		}
	}
}

func TestPruneBefore(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ts := []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)}
	if got := pruneBefore(ts, t0.Add(time.Second)); len(got) != 2 || !got[0].Equal(t0.Add(time.Second)) {
		t.Errorf("pruneBefore kept %v", got)
	}
	if got := pruneBefore(nil, t0); len(got) != 0 {
		t.Errorf("pruneBefore(nil) = %v", got)
	}
}

func TestHuman(t *testing.T) {
	for in, want := range map[time.Duration]string{
		60 * time.Second:        "60s",
		90 * time.Second:        "90s",
		400 * time.Millisecond:  "400ms",
		1638 * time.Millisecond: "1.64s",
		1500 * time.Microsecond: "2ms",
		3 * time.Microsecond:    "3µs",
		2 * time.Hour:           "2h0m0s",
	} {
		if got := human(in); got != want {
			t.Errorf("human(%v) = %q, want %q", in, got, want)
		}
	}
}
