package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/status"
)

// The status table at a glance (issue 17): a line per app with its count's
// source and how its last rollout ended; crashes, give-ups and aborts in
// red, and no escape code at all with colors off.
func TestPrintStatus(t *testing.T) {
	now := time.Now()
	st := &status.Runner{PID: 42, Config: "/srv/cluster.hcl", Phase: "running", Started: now.Add(-time.Hour), PSSBytes: 9 << 20, USSBytes: 7 << 20,
		Apps: []status.App{
			{Name: "web", State: "ready", Instances: 4, InstancesFrom: status.CountScale, Release: 3,
				LastRollout: &status.LastRollout{Kind: "reload", Outcome: status.ReloadAborted, Release: 4, At: now.Add(-2 * time.Minute),
					Why: "the new web.0 (pid 4121) exited with status 1 before it was ready"},
				Procs: []status.Instance{
					{App: "web", Instance: 0, PID: 4100, State: "ready", Role: "serving", Release: 3, Started: now.Add(-time.Minute), CPUPercent: -1, PSSBytes: -1},
					{App: "web", Instance: 1, State: "failed", Release: 3, CPUPercent: -1, PSSBytes: -1,
						LastExit: &status.Exit{PID: 4101, Code: 1, At: now.Add(-time.Minute)}},
				}},
			{Name: "worker", State: "crashloop", Instances: 1, InstancesFrom: status.CountFormation, Release: 1,
				LastRollout: &status.LastRollout{Kind: "restart", Outcome: status.ReloadCompleted, Release: 1, Replaced: 1, Total: 1, At: now.Add(-time.Hour)},
				Procs: []status.Instance{
					{App: "worker", Instance: 0, PID: 4200, State: "starting", Role: "serving", CrashLoop: true, Release: 1, Started: now, CPUPercent: -1, PSSBytes: -1},
				}},
		}}
	var plainOut, colorOut bytes.Buffer
	printStatus(&plainOut, st, false)
	printStatus(&colorOut, st, true)
	out := plainOut.String()
	for _, want := range []string{
		"web:     ready, 4 instances (count from scale), release 3; last reload aborted 2m0s ago: the new web.0 (pid 4121) exited with status 1 before it was ready",
		"worker:  crashloop, 1 instance (count from up -m), release 1; last restart completed 1h0m0s ago (1 of 1 replaced, release 1)",
		"status 1, 1m0s ago",
		"starting (crash loop)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("colors off, yet escape codes:\n%q", out)
	}
	red := 0
	for _, line := range strings.Split(colorOut.String(), "\n") {
		if strings.HasPrefix(line, "\x1b[31m") {
			red++
			if !strings.HasSuffix(line, "\x1b[0m") {
				t.Errorf("a red line that does not end the color: %q", line)
			}
		}
	}
	// web.1 (failed), worker.0 (crash loop), web's line (aborted), worker's
	// line (crash loop); web.0 serves and stays plain.
	if red != 4 {
		t.Errorf("%d red lines, want 4:\n%s", red, colorOut.String())
	}
	// Without its escape codes, the colored table is the plain one: colors
	// do not shift the columns.
	if stripped := strings.NewReplacer("\x1b[31m", "", "\x1b[0m", "").Replace(colorOut.String()); stripped != out {
		t.Errorf("the colored table differs from the plain one:\n%s\n%s", stripped, out)
	}
}

// An app behind an http listener shows each instance's last minute:
// requests per second, p50 and p99; an instance without requests shows
// dashes, and the listener its connections.
func TestPrintStatusHTTP(t *testing.T) {
	now := time.Now()
	st := &status.Runner{PID: 42, Config: "/srv/cluster.hcl", Phase: "running", Started: now, PSSBytes: -1,
		Listeners: []status.Listener{{Name: "web", Address: "127.0.0.1:8080", Mode: "http", Balance: "least-requests", Conns: 12, Queued: 2}},
		Apps: []status.App{{Name: "web", State: "ready", Instances: 2, Release: 1, Procs: []status.Instance{
			{App: "web", Instance: 0, PID: 4100, State: "ready", Role: "serving", Release: 1, Started: now, CPUPercent: -1, PSSBytes: -1,
				HTTP: &status.HTTPRecent{PerSec: 1234.4, P50: 840 * time.Microsecond, P99: 12500 * time.Microsecond}},
			{App: "web", Instance: 1, PID: 4101, State: "ready", Role: "serving", Release: 1, Started: now, CPUPercent: -1, PSSBytes: -1,
				HTTP: &status.HTTPRecent{}},
		}}}}
	var b bytes.Buffer
	printStatus(&b, st, false)
	out := b.String()
	lines := strings.Split(out, "\n")
	var head, row0, row1 string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "APP "):
			head = l
		case strings.HasPrefix(l, "web  0"):
			row0 = l
		case strings.HasPrefix(l, "web  1"):
			row1 = l
		}
	}
	f0, f1 := strings.Fields(row0), strings.Fields(row1)
	if !strings.HasSuffix(head, "REQ/S  P50    P99") || len(f0) < 3 || strings.Join(f0[len(f0)-3:], " ") != "1234 840µs 12ms" ||
		len(f1) < 3 || strings.Join(f1[len(f1)-3:], " ") != "- - -" {
		t.Errorf("http columns wrong:\n%s", out)
	}
	if !strings.Contains(out, "http (least-requests), 12 connections, 2 requests waiting for an instance") {
		t.Errorf("listener line wrong:\n%s", out)
	}
}

// Behind a proxy listener: the listener's connections and queue, a hung
// instance (in red) and one whose oldest connection has waited a second or
// more for its first byte.
func TestPrintStatusProxy(t *testing.T) {
	now := time.Now()
	st := &status.Runner{PID: 42, Config: "/srv/cluster.hcl", Phase: "running", Started: now, PSSBytes: -1,
		Listeners: []status.Listener{{Name: "http", Address: "127.0.0.1:8080", Mode: "proxy", Balance: "least-conn", Conns: 40, MaxConns: 9856, Queued: 3, QueueTimeouts: 2}},
		Apps: []status.App{{Name: "web", State: "ready", Instances: 3, Release: 1, Procs: []status.Instance{
			{App: "web", Instance: 0, PID: 4100, State: "ready", Role: "serving", Release: 1, Started: now, CPUPercent: -1, PSSBytes: -1, Conns: 20},
			{App: "web", Instance: 1, PID: 4101, State: "ready", Role: "serving", Release: 1, Started: now, CPUPercent: -1, PSSBytes: -1,
				Conns: 5, Waiting: 5, OldestWait: 12 * time.Second, Hung: true},
			{App: "web", Instance: 2, PID: 4102, State: "ready", Role: "serving", Release: 1, Started: now, CPUPercent: -1, PSSBytes: -1,
				Conns: 15, Waiting: 2, OldestWait: 1200 * time.Millisecond},
		}}}}
	var plain, color bytes.Buffer
	printStatus(&plain, st, false)
	printStatus(&color, st, true)
	out := plain.String()
	for _, want := range []string{
		"proxy (least-conn), 40 of 9856 connections, 3 waiting for an instance, 2 closed after queue_timeout",
		"ready (hung: no new connections) (5 waiting, oldest 12s)",
		"ready (2 waiting, oldest 1s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	red := strings.Count(color.String(), "\x1b[31m")
	if red != 1 || !strings.Contains(color.String(), "\x1b[31mweb  1") {
		t.Errorf("want the hung instance's row alone in red:\n%s", color.String())
	}
}
