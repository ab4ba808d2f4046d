package runner

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/status"
)

// Scripted tests of the supervisor, one behaviour each, with fake processes
// and a fake clock: no real process, no sleep.

func web(kind string, n int) appSpec {
	return appSpec{name: "web", kind: kind, instances: n}
}

// readyAll makes every starting good process ready and runs until quiet.
func (w *world) settleGood() { w.runUntilQuiet(10000) }

// reload asks for a reload of cfg and returns its answer once quiet.
func (w *world) reloadTo(t *testing.T, cfg *hclconfig.Config, app string) status.ReloadResult {
	t.Helper()
	w.file = cfg
	reply := make(chan status.ReloadResult, 1)
	w.handle(ReloadRequested{App: app, Reply: reply})
	w.settleGood()
	select {
	case r := <-reply:
		return r
	default:
		t.Fatalf("reload not answered; log:\n%s", strings.Join(w.logs, "\n"))
	}
	return status.ReloadResult{}
}

func (w *world) snapshotApp(name string) status.App {
	for _, a := range w.m.Snapshot().Apps {
		if a.Name == name {
			return a
		}
	}
	w.t.Fatalf("no app %s in status", name)
	return status.App{}
}

func logHas(w *world, sub string) bool {
	return slices.ContainsFunc(w.logs, func(l string) bool { return strings.Contains(l, sub) })
}

// Defect: `restart web.0` while a slow release rolls out left instance 0
// on the old release, yet the log said "4 of 4 instances replaced".
func TestRestartDuringSlowRolloutEndsOnNewRelease(t *testing.T) {
	w := newWorld(t, 1)
	w.start(testConfig(1, web("good", 4)))
	w.settleGood()
	w.file = testConfig(2, web("slow", 4))
	reply := make(chan status.ReloadResult, 1)
	w.handle(ReloadRequested{Reply: reply})
	w.deliverLoad()
	// The rollout is under way (slot 0's slow replacement starting);
	// restart instance 0 now.
	restart := make(chan status.ReloadResult, 1)
	w.handle(RestartRequested{App: "web", Instance: 0, Reply: restart})
	w.settleGood()
	res := <-reply
	if res.Err != nil {
		t.Fatalf("reload: %v %q", res.Err, res.Summary)
	}
	if r := <-restart; r.Err != nil {
		t.Fatalf("restart: %v %q", r.Err, r.Summary)
	}
	for _, p := range w.snapshotApp("web").Procs {
		if p.Release != w.m.app("web").rel.Gen {
			t.Errorf("web.%d runs release %d after the reload, want %d", p.Instance, p.Release, w.m.app("web").rel.Gen)
		}
	}
	if !strings.Contains(res.Summary, "4 of 4 instances replaced") {
		t.Errorf("summary %q", res.Summary)
	}
}

// Defect: `clusterrun stop web` while `clusterrun reload` waited made the
// reload answer "reloaded", exit 0, though nothing was replaced.
func TestStopDuringReloadAnswersCancelled(t *testing.T) {
	w := newWorld(t, 2)
	w.start(testConfig(1, web("good", 2)))
	w.settleGood()
	w.file = testConfig(2, web("slow", 2))
	reply := make(chan status.ReloadResult, 1)
	w.handle(ReloadRequested{Reply: reply})
	w.deliverLoad()
	stop := make(chan error, 1)
	w.handle(StopRequested{App: "web", Reply: stop})
	if err := <-stop; err != nil {
		t.Fatal(err)
	}
	w.settleGood()
	res := <-reply
	if res.Err == nil || !strings.Contains(res.Summary, "cancelled: web was stopped") {
		t.Fatalf("reload answered %q, %v; want cancelled", res.Summary, res.Err)
	}
	if len(res.Apps) != 1 || res.Apps[0].Outcome != status.ReloadCancelled {
		t.Errorf("apps %+v", res.Apps)
	}
}

// Defect: `clusterrun reload` printed the outcomes of earlier SIGHUP
// reloads (even an old rejected-config error) and exited 1 after a reload
// that succeeded; for an app that never existed it said the app "is no
// longer in" the file.
func TestReloadAnswersOnlyItsOwnOutcome(t *testing.T) {
	w := newWorld(t, 3)
	w.start(testConfig(1, web("good", 2)))
	w.settleGood()
	w.file = nil // a broken file, by SIGHUP
	w.handle(ReloadRequested{})
	w.settleGood()
	if !logHas(w, "reload rejected") {
		t.Fatal("the broken file was not rejected")
	}
	res := w.reloadTo(t, testConfig(2, web("good", 2)), "")
	if res.Err != nil || strings.Contains(res.Summary, "rejected") {
		t.Fatalf("a good reload after a rejected SIGHUP answered %q, %v", res.Summary, res.Err)
	}
	res = w.reloadTo(t, testConfig(3, web("good", 2)), "nope")
	if res.Err == nil || !strings.Contains(res.Err.Error(), `no app "nope"`) {
		t.Fatalf("reload of an app that never existed: %v", res.Err)
	}
	res = w.reloadTo(t, testConfig(4, appSpec{name: "other", kind: "good", instances: 1}), "web")
	if res.Err == nil || !strings.Contains(res.Err.Error(), "no longer in") {
		t.Fatalf("reload of an app gone from the file: %v", res.Err)
	}
}

// Defect: a crash-looping app under the default delay readiness was logged
// "ready after 1s", its backoff reset, and status showed "ready serving"
// for instances that never served.
func TestCrashLoopUnderDelayReadiness(t *testing.T) {
	w := newWorld(t, 4)
	spec := appSpec{name: "web", kind: "good", instances: 1, delay: true}
	w.start(testConfig(1, spec))
	var delays []string
	for round := 0; round < 4; round++ {
		w.runUntilQuiet(100)
		p := w.live("web")[0]
		// Ready (1s delay), then dies before min_uptime (1s) after that.
		w.now = w.now.Add(500 * time.Millisecond)
		if st := w.snapshotApp("web"); round > 0 && (st.State != "crashloop" || !st.Procs[0].CrashLoop) {
			t.Errorf("round %d: a crash-looping app shows as %s, crash_loop %v", round, st.State, st.Procs[0].CrashLoop)
		}
		w.exit(p, proc.Status{Code: 1})
		line := w.logs[len(w.logs)-1]
		i := strings.Index(line, "restarting in ")
		if i < 0 {
			t.Fatalf("no restart: %q", line)
		}
		delays = append(delays, strings.Fields(line[i+len("restarting in "):])[0])
	}
	// Backoff 100ms doubles per crash: it must not reset to 100ms.
	for i, d := range delays {
		if i > 0 && strings.HasPrefix(d, "10") && len(d) <= 5 {
			t.Errorf("backoff reset after crash %d: %v", i+1, delays)
		}
	}
}

// A slot that stays up min_uptime after it became ready ends its crash
// loop: the next crash starts over at the first backoff.
func TestStableResetsBackoff(t *testing.T) {
	w := newWorld(t, 5)
	w.start(testConfig(1, web("good", 1)))
	w.settleGood()
	for i := 0; i < 3; i++ {
		w.exit(w.live("web")[0], proc.Status{Code: 1})
		w.settleGood()
		w.advance(1100 * time.Millisecond) // min_uptime after ready
	}
	s := w.m.app("web").slots[0]
	if s.consecutive != 0 {
		t.Fatalf("consecutive = %d after stable runs", s.consecutive)
	}
	// Every crash came after a stable run: each restart is at the first
	// backoff (100ms plus jitter), never a doubled one.
	restarts := 0
	for _, l := range w.logs {
		if i := strings.Index(l, "restarting in "); i >= 0 {
			restarts++
			if d := strings.Fields(l[i+len("restarting in "):])[0]; !strings.HasPrefix(d, "10") || len(d) > 5 {
				t.Errorf("restart %d after a stable run waited %s, not the first backoff: %s", restarts, d, l)
			}
		}
	}
	if restarts != 3 {
		t.Errorf("%d restarts logged, want 3:\n%s", restarts, strings.Join(w.logs, "\n"))
	}
}

// STOPPING=1 starts the replacement at once; the announcing process gets
// no signal and is not routable, and its exit is no crash.
func TestStoppingStartsReplacementFirst(t *testing.T) {
	w := newWorld(t, 6)
	w.start(testConfig(1, web("good", 1)))
	w.settleGood()
	old := w.live("web")[0]
	w.notify(old, "STOPPING=1")
	if w.routable[old.id] {
		t.Error("a process that announced STOPPING=1 is still routable")
	}
	w.spawn(0, false)
	nw := w.live("web")[1]
	w.notify(nw, "READY=1")
	if old.signalled != 0 {
		t.Errorf("the dying process was sent %v", old.signalled)
	}
	if !w.routable[nw.id] {
		t.Error("the replacement is not routable once ready")
	}
	w.exit(old, proc.Status{Code: 1})
	w.settleGood()
	if logHas(w, "restarting in") {
		t.Errorf("the announced exit went through backoff:\n%s", strings.Join(w.logs, "\n"))
	}
}

// Unroutable is published before the stop signal (the proxy stops routing
// to an instance before it is told to stop); the fake Signal fails the
// test otherwise, so a drain exercises it.
func TestUnroutableBeforeStopSignal(t *testing.T) {
	w := newWorld(t, 7)
	w.start(testConfig(1, web("good", 3)))
	w.settleGood()
	res := w.reloadTo(t, testConfig(2, web("good", 3)), "")
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	w.handle(DrainRequested{Signal: syscall.SIGTERM})
	w.settleGood()
	if done, code := w.m.Finished(); !done || code != 0 {
		t.Fatalf("finished %v, code %d", done, code)
	}
}

// A crash-on-boot release aborts, and instances already replaced go back
// to the previous release.
func TestAbortRollsBack(t *testing.T) {
	w := newWorld(t, 8)
	w.start(testConfig(1, web("good", 3)))
	w.settleGood()
	before := w.m.app("web").rel
	res := w.reloadTo(t, testConfig(2, web("crash", 3)), "")
	if res.Err == nil || len(res.Apps) != 1 || res.Apps[0].Outcome != status.ReloadAborted {
		t.Fatalf("crash-on-boot release: %q %v", res.Summary, res.Err)
	}
	if a := w.m.app("web"); a.rel != before {
		t.Errorf("the app's release is %d after the abort, want %d back", a.rel.Gen, before.Gen)
	}
	for _, s := range w.m.app("web").slots {
		if s.cur == nil || s.cur.rel != before || s.cur.state != stReady {
			t.Errorf("%s after the abort: %+v", s.label(), s.cur)
		}
	}
}

// Scale is bounded: 1..4096.
func TestScaleBounds(t *testing.T) {
	for _, tc := range []struct {
		spec string
		cur  int
		want int
		err  string
	}{
		{"4", 2, 4, ""}, {"+2", 2, 4, ""}, {"-1", 2, 1, ""},
		{"+100000", 2, 0, "must stay within 1..4096"}, {"0", 2, 0, "within 1..4096"}, {"-2", 2, 0, "within 1..4096"},
		{"4097", 1, 0, "within 1..4096"}, {"x", 1, 0, "want N, +N or -N"}, {"++1", 1, 0, "want N"}, {"", 1, 0, "want N"},
		{"99999999999999999999", 1, 0, "want N"},
	} {
		n, err := ParseScale(tc.spec, tc.cur)
		if tc.err == "" && (err != nil || n != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseScale(%q, %d) = %d, %v", tc.spec, tc.cur, n, err)
		}
	}
}

// max_memory: three samples in a row above the limit replace the
// instance the graceful way, and count as a memory restart.
func TestMaxMemoryReplacesGracefully(t *testing.T) {
	w := newWorld(t, 9)
	cfg := testConfig(1, web("good", 1))
	cfg.Apps[0].Restart.MaxMemory = 100 << 20
	w.start(cfg)
	w.settleGood()
	old := w.live("web")[0]
	for i := 0; i < 3; i++ {
		w.handle(UsageSampled{Usage: map[int]proc.Usage{old.pid: {Memory: proc.Memory{PSS: 200 << 20, USS: 150 << 20}}}, Interval: 2 * time.Second})
	}
	if !logHas(w, "used 200.0MiB (PSS), above max_memory = 100.0MiB") {
		t.Fatalf("no memory replacement:\n%s", strings.Join(w.logs, "\n"))
	}
	if old.signalled != 0 {
		t.Fatal("the old instance was stopped before its replacement was ready")
	}
	w.settleGood()
	if old.alive {
		t.Error("the old instance survived its replacement")
	}
	if n := w.m.counters.Restarts["web"][status.RestartMemory]; n != 1 {
		t.Errorf("memory restarts = %d", n)
	}
	if w.m.counters.Restarts["web"][status.RestartCrash] != 0 {
		t.Error("a memory replacement counted as a crash")
	}
}

// A watchdog that stops being fed replaces the instance, new one first.
func TestWatchdogReplaces(t *testing.T) {
	w := newWorld(t, 10)
	w.start(testConfig(1, appSpec{name: "w", kind: "good", instances: 1, watchdog: true}))
	w.runUntilQuiet(100)
	old := w.live("w")[0]
	// Let time pass without WATCHDOG=1: two misses (failures = 2). The
	// watchdog timer re-arms itself, so the loop is bounded by count.
	for fires := 0; !logHas(w, "failed 2 watchdog checks in a row"); fires++ {
		if fires == 20 || !w.fireNext() {
			t.Fatalf("no watchdog replacement after %d timers:\n%s", fires, strings.Join(w.logs, "\n"))
		}
	}
	if w.routable[old.id] {
		t.Error("an instance failing its watchdog is still routable")
	}
	w.settleGood()
	if old.alive {
		t.Error("the hung instance survived its replacement")
	}
}

// The exit code: 0 for a clean drain, 1 when something had to be killed.
func TestDrainExitCodes(t *testing.T) {
	w := newWorld(t, 11)
	w.start(testConfig(1, web("good", 2)))
	w.settleGood()
	w.live("web")[0].hung = true
	w.handle(DrainRequested{Signal: syscall.SIGTERM})
	w.settleGood()
	if done, code := w.m.Finished(); !done || code != 1 {
		t.Fatalf("a drain that had to SIGKILL: finished %v code %d", done, code)
	}
}

// A drain is clean only when every process ends as a stop signal ends it:
// exit 0, killed by that signal, or status 128+signal. An app that fails at
// its stop (exit 1 from its SIGTERM handler) makes the exit status 1.
func TestDrainExitCodeFollowsHowProcessesStopped(t *testing.T) {
	for _, c := range []struct {
		st   proc.Status
		want int
	}{
		{proc.Status{}, 0},
		{proc.Status{Signal: syscall.SIGTERM}, 0},
		{proc.Status{Code: 128 + int(syscall.SIGTERM)}, 0},
		{proc.Status{Code: 1}, 1},
		{proc.Status{Signal: syscall.SIGSEGV}, 1},
	} {
		w := newWorld(t, 13)
		w.start(testConfig(1, web("good", 2)))
		w.settleGood()
		w.handle(DrainRequested{Signal: syscall.SIGTERM})
		p := w.live("web")[0]
		if p.signalled != syscall.SIGTERM {
			t.Fatalf("web.0 not sent SIGTERM at the drain")
		}
		w.exit(p, c.st)
		w.settleGood()
		if done, code := w.m.Finished(); !done || code != c.want {
			t.Errorf("an instance that %s at the drain: finished %v, code %d, want %d", c.st, done, code, c.want)
		}
		if c.want == 1 && !logHas(w, "did not stop cleanly") {
			t.Errorf("%s: the log does not say which instance failed at its stop:\n%s", c.st, strings.Join(w.logs, "\n"))
		}
	}
}

// A process that exited just before its ready delay passed is not ready,
// though the timer is handled before its Exited event (seen under load: a
// crash on EADDRINUSE, then "ready", then "reload complete").
func TestDelayReadinessNeedsTheProcessAlive(t *testing.T) {
	w := newWorld(t, 14)
	w.start(testConfig(1, appSpec{name: "web", kind: "good", instances: 1, delay: true}))
	for len(w.spawns) > 0 {
		w.spawn(0, false)
	}
	p := w.live("web")[0]
	p.alive = false // it has exited; its Exited event is still on its way
	w.advance(2 * time.Second)
	if logHas(w, "ready after") {
		t.Fatalf("a process that had exited was taken as ready:\n%s", strings.Join(w.logs, "\n"))
	}
	delete(w.procs, p.id)
	w.handle(Exited{ID: p.id, Status: proc.Status{Code: 1}})
	if st := w.snapshotApp("web"); st.Procs[0].Restarts != 1 {
		t.Fatalf("its exit is not a crash before ready: %+v\n%s", st.Procs[0], strings.Join(w.logs, "\n"))
	}
}

// Requests after the runner finished are answered, not left hanging.
func TestLateRequestsAreAnswered(t *testing.T) {
	w := newWorld(t, 12)
	w.start(testConfig(1, web("good", 1)))
	w.settleGood()
	w.handle(DrainRequested{Signal: syscall.SIGTERM})
	w.settleGood()
	r := make(chan status.ReloadResult, 1)
	w.handle(ReloadRequested{Reply: r})
	if res := <-r; res.Err != errStopped {
		t.Errorf("reload after the end: %v", res.Err)
	}
	sc := make(chan ScaleResult, 1)
	w.handle(ScaleRequested{App: "web", Spec: "2", Reply: sc})
	if res := <-sc; res.Err != errStopped {
		t.Errorf("scale after the end: %v", res.Err)
	}
}

// tcp readiness and an http health check: ready when the probe passes,
// replaced (new one first) after failures misses, and no probe is left
// running for a process that is gone.
func TestProbesDriveReadinessAndHealth(t *testing.T) {
	w := newWorld(t, 13)
	cfg := testConfig(1, web("good", 1))
	a := cfg.Apps[0]
	a.Ready = hclconfig.Ready{Check: hclconfig.ReadyTCP, Timeout: 10 * time.Second}
	a.Health = hclconfig.Health{Check: hclconfig.HealthHTTP, Path: "/healthz", Interval: time.Second, Timeout: time.Second, Failures: 2}
	w.start(cfg)
	w.spawn(0, false)
	old := w.live("web")[0]
	if !strings.HasPrefix(w.probes[old.id], "ready 127.0.0.1:") {
		t.Fatalf("no ready probe: %v", w.probes)
	}
	w.handle(ProbeResult{ID: old.id, OK: true})
	if !w.routable[old.id] || !strings.HasPrefix(w.probes[old.id], "health ") {
		t.Fatalf("after the ready probe: routable %v, probes %v", w.routable[old.id], w.probes)
	}
	w.handle(ProbeResult{ID: old.id, Health: true, Detail: "status 503"})
	w.handle(ProbeResult{ID: old.id, Health: true, OK: true})
	w.handle(ProbeResult{ID: old.id, Health: true, Detail: "status 503"})
	if !w.routable[old.id] || len(w.spawns) != 0 {
		t.Fatal("a success between two misses must reset the count")
	}
	w.handle(ProbeResult{ID: old.id, Health: true, Detail: "connection refused"})
	if w.routable[old.id] || len(w.spawns) != 1 {
		t.Fatalf("after 2 misses in a row: routable %v, %d starts", w.routable[old.id], len(w.spawns))
	}
	w.spawn(0, false)
	nw := w.live("web")[1]
	w.handle(ProbeResult{ID: nw.id, OK: true})
	if old.signalled != syscall.SIGTERM || !w.routable[nw.id] {
		t.Fatalf("once the replacement is ready the old one stops: %v, routable %v", old.signalled, w.routable[nw.id])
	}
	w.settleGood()
	if _, ok := w.probes[old.id]; ok {
		t.Error("a probe of a gone process is still running")
	}
	if n := w.m.counters.Restarts["web"][status.RestartHealth]; n != 1 {
		t.Errorf("health restarts = %d", n)
	}
}

// A one-shot step (ready.check = "exit") is never ready while it runs:
// what depends on it starts once it exits 0, and a finished step is not
// restarted, even under restart policy "always".
func TestOneShotStepGatesItsDependents(t *testing.T) {
	w := newWorld(t, 14)
	cfg := testConfig(1, appSpec{name: "build", kind: "good", instances: 1}, appSpec{name: "web", kind: "good", instances: 1, dependsOn: []string{"build"}})
	cfg.Apps[0].Ready = hclconfig.Ready{Check: hclconfig.ReadyExit, Timeout: time.Minute}
	cfg.Apps[0].Restart.Policy = hclconfig.RestartAlways
	w.start(cfg)
	w.spawn(0, false)
	b := w.live("build")[0]
	w.advance(10 * time.Second) // a delay check would have said ready long ago
	if len(w.spawns) != 0 || len(w.live("web")) != 0 {
		t.Fatal("web started while its build was still running")
	}
	w.exit(b, proc.Status{})
	if len(w.spawns) != 1 {
		t.Fatalf("web did not start once the build was done:\n%s", strings.Join(w.logs, "\n"))
	}
	if st := w.snapshotApp("build"); st.State != "done" {
		t.Errorf("build is %s, want done", st.State)
	}
	w.settleGood()
	if n := len(w.live("build")); n != 0 {
		t.Errorf("a finished one-shot step was restarted (%d running)", n)
	}
}

// Issue 13: `restart web` during a reload answered "reload complete: 4 of 3
// instances replaced" (a slot the reload had replaced was counted again),
// and a slot whose new process had started just before the restart was not
// replaced again, though the restart said complete. A restart asks for
// processes started after it was asked.
func TestRestartDuringReloadReplacesEverySlotAfterIt(t *testing.T) {
	w := newWorld(t, 20)
	w.start(testConfig(1, web("good", 3)))
	w.settleGood()
	w.file = testConfig(2, web("slow", 3))
	reload := make(chan status.ReloadResult, 1)
	w.handle(ReloadRequested{Reply: reload})
	w.deliverLoad()
	// Slot 0's slow replacement becomes ready (3s), then slot 1's starts.
	for !logHas(w, "web.1 started") {
		if !w.benignStep() {
			t.Fatalf("slot 1 was never replaced:\n%s", strings.Join(w.logs, "\n"))
		}
	}
	since := w.m.nextID
	restart := make(chan status.ReloadResult, 1)
	w.handle(RestartRequested{App: "web", Instance: -1, Reply: restart})
	w.settleGood()
	res := <-restart
	if res.Err != nil || !strings.Contains(res.Summary, "3 of 3 instances replaced") {
		t.Errorf("restart answered %q, %v; want complete, 3 of 3", res.Summary, res.Err)
	}
	for _, s := range w.m.app("web").slots {
		if s.cur == nil || s.cur.id <= since || s.cur.rel.Gen != 2 {
			t.Errorf("%s after the restart runs %+v, want a process of release 2 started after the restart (id > %d)", s.label(), s.cur, since)
		}
	}
	if r := <-reload; r.Err != nil {
		t.Errorf("the reload: %q, %v", r.Summary, r.Err)
	}
}

// A restart asked while a reload is read is carried on by that reload's
// rollout instead of being answered "superseded".
func TestReloadCarriesARestartOn(t *testing.T) {
	w := newWorld(t, 21)
	w.start(testConfig(1, web("good", 2)))
	w.settleGood()
	w.file = testConfig(2, web("good", 2))
	w.handle(ReloadRequested{})
	restart := make(chan status.ReloadResult, 1)
	w.handle(RestartRequested{App: "web", Instance: 1, Reply: restart})
	w.settleGood()
	if res := <-restart; res.Err != nil || !strings.Contains(res.Summary, "reload complete") {
		t.Errorf("restart answered %q, %v; want the reload's completion", res.Summary, res.Err)
	}
}

// Issue 12: a live scale survives a reload that does not change the file's
// count (it went back to the file's: 2 → 4 → SIGHUP → 2); a reload that
// changes it wins. Status says where each count came from.
func TestReloadKeepsALiveScaleUnlessTheFileCountChanged(t *testing.T) {
	w := newWorld(t, 22)
	w.start(testConfig(1, web("good", 2)))
	w.settleGood()
	count := func() (int, string, int) {
		st := w.snapshotApp("web")
		return st.Instances, st.InstancesFrom, len(w.m.app("web").slots)
	}
	if n, from, _ := count(); n != 2 || from != status.CountFile {
		t.Fatalf("at start: %d from %s", n, from)
	}
	sc := make(chan ScaleResult, 1)
	w.handle(ScaleRequested{App: "web", Spec: "+2", Reply: sc})
	if r := <-sc; r.Err != nil || r.N != 4 {
		t.Fatalf("scale: %+v", r)
	}
	w.settleGood()
	if res := w.reloadTo(t, testConfig(2, web("good", 2)), ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if n, from, slots := count(); n != 4 || from != status.CountScale || slots != 4 {
		t.Errorf("after a reload with the same count: %d from %s, %d slots; want 4 from scale", n, from, slots)
	}
	if res := w.reloadTo(t, testConfig(3, web("good", 3)), ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if n, from, slots := count(); n != 3 || from != status.CountFile || slots != 3 {
		t.Errorf("after a reload with a new count: %d from %s, %d slots; want 3 from the file", n, from, slots)
	}
	// A rejected reload declares nothing: the next one compares with the
	// last accepted file.
	w.file = nil
	w.handle(ReloadRequested{})
	w.settleGood()
	w.handle(ScaleRequested{App: "web", Spec: "5", Reply: sc})
	<-sc
	if res := w.reloadTo(t, testConfig(4, web("good", 3)), ""); res.Err != nil {
		t.Fatal(res.Err)
	}
	if n, from, _ := count(); n != 5 || from != status.CountScale {
		t.Errorf("after a rejected reload and one with the same count: %d from %s; want 5 from scale", n, from)
	}
}

// With up -m, the formation's count is the declared one: a file that
// changes its count does not change the app's, and a scale stays.
func TestFormationCountsAcrossReloads(t *testing.T) {
	w := newWorld(t, 23)
	w.formation = map[string]int{"web": 3}
	w.start(testConfig(1, web("good", 1)))
	w.settleGood()
	if st := w.snapshotApp("web"); st.Instances != 3 || st.InstancesFrom != status.CountFormation {
		t.Fatalf("at start: %d from %s, want 3 from -m", st.Instances, st.InstancesFrom)
	}
	sc := make(chan ScaleResult, 1)
	w.handle(ScaleRequested{App: "web", Spec: "2", Reply: sc})
	<-sc
	w.reloadTo(t, testConfig(2, web("good", 6)), "")
	if st := w.snapshotApp("web"); st.Instances != 2 || st.InstancesFrom != status.CountScale {
		t.Errorf("after a reload: %d from %s, want the scale's 2", st.Instances, st.InstancesFrom)
	}
}

// Issue 17: `start web` after `up -m web=0` answered `no app "web"`. The
// runner knows the app, keeps it stopped, and starts it (with the file's
// count) when asked.
func TestFormationZeroLeavesTheAppToStart(t *testing.T) {
	w := newWorld(t, 24)
	w.formation = map[string]int{"web": 0}
	w.start(testConfig(1, appSpec{name: "api", kind: "good", instances: 1}, web("good", 2)))
	w.settleGood()
	if n := len(w.live("web")); n != 0 {
		t.Fatalf("%d web processes with -m web=0", n)
	}
	if st := w.snapshotApp("web"); st.State != "stopped" {
		t.Errorf("web is %s, want stopped", st.State)
	}
	reply := make(chan error, 1)
	w.handle(StartRequested{App: "web", Reply: reply})
	if err := <-reply; err != nil {
		t.Fatalf("start web: %v", err)
	}
	w.settleGood()
	if st := w.snapshotApp("web"); st.State != "ready" || st.Instances != 2 || st.InstancesFrom != status.CountFile || len(w.live("web")) != 2 {
		t.Errorf("after start web: %s, %d instances from %s, %d running", st.State, st.Instances, st.InstancesFrom, len(w.live("web")))
	}
}

// proxied returns a config whose app serves through a proxy listener.
func proxiedWeb(gen, n int) *hclconfig.Config {
	cfg := testConfig(gen, appSpec{name: "web", kind: "good", instances: n, probed: true})
	cfg.Apps[0].Health = hclconfig.Health{}
	return cfg
}

// Issue 12: the stop signal and the stop timer belong to the machine. A
// proxied instance that served is unroutable at once, gets its stop signal
// only when the sockets report it quiesced, and only then is its stop timer
// armed: its whole stop.timeout is its own.
func TestStopSignalWaitsForQuiesced(t *testing.T) {
	w := newWorld(t, 25)
	w.start(proxiedWeb(1, 1))
	w.settleGood()
	old := w.live("web")[0]
	reply := make(chan error, 1)
	w.handle(StopRequested{App: "web", Reply: reply})
	<-reply
	if w.routable[old.id] || len(w.quiescing) != 1 || w.quiescing[0] != old.id {
		t.Fatalf("after stop: routable %v, quiescing %v", w.routable[old.id], w.quiescing)
	}
	if old.signalled != 0 {
		t.Fatalf("signalled %v before it was quiesced", old.signalled)
	}
	for _, tm := range w.activeTimers() {
		if tf := tm.ev.(timerFired); tf.kind == tStop {
			t.Fatal("the stop timer is armed before the stop signal")
		}
	}
	w.advance(2 * time.Second) // quiesce still under way: nothing
	if old.signalled != 0 {
		t.Fatalf("signalled %v while its connections are still open, within stop.timeout", old.signalled)
	}
	signalledAt := w.now
	w.quiesce(0)
	if old.signalled != syscall.SIGTERM {
		t.Fatalf("not signalled once quiesced: %v", old.signalled)
	}
	old.hung = true
	w.settleGood()
	// SIGKILL came a full stop.timeout (3s) after the signal, not after the
	// stop was decided.
	var killedAt time.Time
	for _, ev := range w.events {
		if ev.ID == old.id && ev.Kind == status.Signalled && ev.Reason == "SIGKILL" {
			killedAt = ev.Time
		}
	}
	if got := killedAt.Sub(signalledAt); got != 3*time.Second {
		t.Errorf("SIGKILL %v after the stop signal, want stop.timeout (3s)", got)
	}
}

// When Quiesced never comes (a connection that stays busy), the signal is
// sent anyway at stop.timeout, and the log says why.
func TestQuiesceTimeoutSignalsAnyway(t *testing.T) {
	w := newWorld(t, 26)
	w.start(proxiedWeb(1, 1))
	w.settleGood()
	old := w.live("web")[0]
	reply := make(chan error, 1)
	w.handle(StopRequested{App: "web", Reply: reply})
	<-reply
	w.quiescing = nil // never answered
	w.advance(3 * time.Second)
	if old.signalled != syscall.SIGTERM || !logHas(w, "connections forwarded to it are still open after 3s; sending SIGTERM anyway") {
		t.Fatalf("at stop.timeout: signalled %v; log:\n%s", old.signalled, strings.Join(w.logs, "\n"))
	}
	w.settleGood()
	if old.alive {
		t.Error("the instance outlived its stop")
	}
}

// An instance that never served through the proxy has no connection to
// wait for: it is signalled at once.
func TestNeverReadyProxiedInstanceIsSignalledAtOnce(t *testing.T) {
	w := newWorld(t, 27)
	w.start(proxiedWeb(1, 1))
	w.spawn(0, false)
	p := w.live("web")[0]
	reply := make(chan error, 1)
	w.handle(StopRequested{App: "web", Reply: reply})
	<-reply
	if p.signalled != syscall.SIGTERM || len(w.quiescing) != 0 {
		t.Errorf("a starting instance: signalled %v, quiescing %v", p.signalled, w.quiescing)
	}
}

// A signal forwarded while an instance is being spawned reaches it once it
// has started: its output may reach the user before the runner has its pid.
func TestForwardReachesAnInstanceStillSpawning(t *testing.T) {
	w := newWorld(t, 28)
	w.start(proxiedWeb(1, 2))
	w.spawn(0, false)
	first := w.live("web")[0]
	w.handle(ForwardRequested{Signal: syscall.SIGUSR1})
	if !slices.Equal(first.got, []syscall.Signal{syscall.SIGUSR1}) {
		t.Fatalf("the started instance got %v", first.got)
	}
	w.spawn(0, false)
	var second *fproc
	for _, p := range w.live("web") {
		if p != first {
			second = p
		}
	}
	if second == nil || !slices.Equal(second.got, []syscall.Signal{syscall.SIGUSR1}) {
		t.Fatalf("the instance spawned after the signal: %+v", second)
	}
	if !logHas(w, "received SIGUSR1: forwarded to 1 instances, and to 1 more once they have started") {
		t.Errorf("log:\n%s", strings.Join(w.logs, "\n"))
	}
}

// unhealthyWeb runs one web instance, ready by a tcp probe, with an http
// health check that two failures in a row fail; it makes it ready, then
// fails its check twice.
func unhealthyWeb(t *testing.T, seed uint64) (*world, *fproc) {
	w := newWorld(t, seed)
	cfg := testConfig(1, web("good", 1))
	cfg.Apps[0].Ready = hclconfig.Ready{Check: hclconfig.ReadyTCP, Timeout: 10 * time.Second}
	cfg.Apps[0].Health = hclconfig.Health{Check: hclconfig.HealthHTTP, Path: "/", Interval: time.Second, Timeout: time.Second, Failures: 2}
	w.start(cfg)
	w.spawn(0, false)
	old := w.live("web")[0]
	w.handle(ProbeResult{ID: old.id, OK: true})
	w.handle(ProbeResult{ID: old.id, Health: true, Detail: "status 503"})
	w.handle(ProbeResult{ID: old.id, Health: true, Detail: "status 503"})
	return w, old
}

// Health recovery: an instance that failed health.failures checks in a row
// is unroutable and its replacement starts; one check that passes makes it
// routable again until the replacement is ready, which then replaces it.
func TestHealthRecovers(t *testing.T) {
	w, old := unhealthyWeb(t, 28)
	if w.routable[old.id] || len(w.spawns) != 1 {
		t.Fatalf("after 2 failed checks: routable %v, %d starts", w.routable[old.id], len(w.spawns))
	}
	w.handle(ProbeResult{ID: old.id, Health: true, OK: true})
	if !w.routable[old.id] || !logHas(w, "passes its http check again") {
		t.Fatalf("after a check that passes: routable %v; log:\n%s", w.routable[old.id], strings.Join(w.logs, "\n"))
	}
	// Its replacement goes on, and replaces it once ready.
	w.spawn(0, false)
	nw := w.live("web")[1]
	w.handle(ProbeResult{ID: nw.id, OK: true})
	if w.routable[old.id] || !w.routable[nw.id] || old.signalled != syscall.SIGTERM {
		t.Errorf("once the replacement is ready: old routable %v signalled %v, new routable %v", w.routable[old.id], old.signalled, w.routable[nw.id])
	}
	// Routable twice, Ready once: what metrics count readiness on.
	ready := 0
	for _, ev := range w.events {
		if ev.ID == old.id && ev.Kind == status.Ready {
			ready++
		}
	}
	if ready != 1 {
		t.Errorf("Ready published %d times for the recovered instance", ready)
	}
}

// An unhealthy instance whose replacement failed is replaced again at its
// next failed check: it stayed unroutable for good before.
func TestUnhealthyInstanceIsRepairedAgainAfterItsReplacementFailed(t *testing.T) {
	w, old := unhealthyWeb(t, 29)
	w.spawn(0, true) // the replacement cannot start
	w.handle(ProbeResult{ID: old.id, Health: true, Detail: "status 503"})
	if len(w.spawns) != 1 {
		t.Fatalf("no second replacement after the first failed:\n%s", strings.Join(w.logs, "\n"))
	}
}

// Issue 17: the LAST EXIT of a serving row is its own slot's, never that of
// a replacement that failed; the app says how its last rollout ended.
func TestFailedReplacementLeavesLastExitAlone(t *testing.T) {
	w := newWorld(t, 30)
	w.start(testConfig(1, web("good", 1)))
	w.settleGood()
	res := w.reloadTo(t, testConfig(2, web("crash", 1)), "")
	if res.Err == nil {
		t.Fatalf("a crash-on-boot release: %q", res.Summary)
	}
	st := w.snapshotApp("web")
	if p := st.Procs[0]; p.Role != "serving" || p.LastExit != nil {
		t.Errorf("the serving row after the abort: %+v, last exit %+v", p, p.LastExit)
	}
	lr := st.LastRollout
	if lr == nil || lr.Kind != "reload" || lr.Outcome != status.ReloadAborted || lr.Release != 2 || !strings.Contains(lr.Why, "exited with status 1 before it was ready") {
		t.Errorf("last rollout %+v", lr)
	}
	if st.Release != 1 {
		t.Errorf("release %d after the abort, want 1 (numbered per app)", st.Release)
	}
}

// Releases are numbered per app: a reload of one app does not move the
// other's number.
func TestReleasesArePerApp(t *testing.T) {
	w := newWorld(t, 31)
	w.start(testConfig(1, web("good", 1), appSpec{name: "worker", kind: "good", instances: 1}))
	w.settleGood()
	w.reloadTo(t, testConfig(2, web("good", 1), appSpec{name: "worker", kind: "good", instances: 1}), "web")
	w.reloadTo(t, testConfig(3, web("good", 1), appSpec{name: "worker", kind: "good", instances: 1}), "web")
	if web, worker := w.snapshotApp("web").Release, w.snapshotApp("worker").Release; web != 3 || worker != 1 {
		t.Errorf("releases web %d, worker %d; want 3 and 1", web, worker)
	}
}

// A subscriber sees every change: what happens to instances, restarts with
// their reason, rollouts and their outcome, rejected reloads, new counts,
// give-ups and app states.
func TestLifecycleStreamIsComplete(t *testing.T) {
	w := newWorld(t, 32)
	giveUpAtOnce := func(gen int) *hclconfig.Config {
		cfg := testConfig(gen, web("good", 1))
		cfg.Apps[0].Restart.MaxRestarts = 0
		return cfg
	}
	w.start(giveUpAtOnce(1))
	w.settleGood()
	w.reloadTo(t, giveUpAtOnce(2), "")
	w.file = nil
	w.handle(ReloadRequested{})
	w.settleGood()
	sc := make(chan ScaleResult, 1)
	w.handle(ScaleRequested{App: "web", Spec: "2", Reply: sc})
	<-sc
	w.settleGood()
	w.handle(RestartRequested{App: "web", Instance: 0, Reply: make(chan status.ReloadResult, 1)})
	w.settleGood()
	w.exit(w.live("web")[0], proc.Status{Code: 1}) // max_restarts 0: gives up
	reply := make(chan error, 1)
	w.handle(StopRequested{App: "web", Reply: reply})
	<-reply
	w.settleGood()
	seen := map[status.LifecycleKind][]status.Lifecycle{}
	for _, ev := range w.events {
		seen[ev.Kind] = append(seen[ev.Kind], ev)
	}
	for k := status.Started; k <= status.AppState; k++ {
		if len(seen[k]) == 0 {
			t.Errorf("no %s event", k)
		}
	}
	if r := seen[status.Restart]; len(r) == 0 || r[0].Reason != status.RestartManual || r[0].Instance != 0 {
		t.Errorf("restart events %+v", r)
	}
	if s := seen[status.Scaled]; len(s) == 0 || s[0].Count != 2 || s[0].Reason != status.CountScale {
		t.Errorf("scaled events %+v", s)
	}
	for _, ev := range seen[status.RolloutEnded] {
		if ev.Outcome == "" || ev.Detail == "" {
			t.Errorf("a rollout's end without its outcome: %+v", ev)
		}
	}
}
