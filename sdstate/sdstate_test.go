package sdstate

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/status"
)

// recorder is a Sender that keeps every message, one line per assignment,
// and fails while fail is set.
type recorder struct {
	msgs []string
	fail bool
}

func (r *recorder) Send(kv ...string) error {
	if r.fail {
		return errors.New("cannot notify: refused")
	}
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	r.msgs = append(r.msgs, b.String())
	return nil
}

func newTest(t *testing.T) (*Reporter, *recorder, *[]string) {
	cfg := &hclconfig.Config{Apps: []*hclconfig.App{
		{Name: "db", Ready: hclconfig.Ready{Timeout: 30 * time.Second}, Restart: hclconfig.Restart{MaxBackoff: 10 * time.Second}},
		{Name: "web", Ready: hclconfig.Ready{Timeout: 2 * time.Minute}},
	}}
	rec := &recorder{}
	var logs []string
	r := newReporter(rec, time.Second, cfg, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
	return r, rec, &logs
}

func running(ready, total int, failed ...string) status.Progress {
	return status.Progress{Phase: "running", Ready: ready, Total: total, Failed: failed}
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("messages:\n%q\nwant:\n%q", got, want)
	}
	for i := range want {
		if !regexp.MustCompile("^(?:" + want[i] + ")$").MatchString(got[i]) {
			t.Fatalf("message %d: %q, want %q\nall: %q", i, got[i], want[i], got)
		}
	}
}

// The start: progress lines, one extension per start that needs a longer
// one, READY=1 once settled (an app that gave up counts as settled, and is
// named). Reloads asked for during the start are folded into it.
func TestStart(t *testing.T) {
	r, rec, _ := newTest(t)
	if r.Every() != 500*time.Millisecond {
		t.Errorf("Every = %v, want half of WATCHDOG_USEC", r.Every())
	}
	now := time.Now()
	r.Progress(running(0, 2))
	r.Observe(status.Lifecycle{Kind: status.Started, App: "db", Time: now})
	r.Observe(status.Lifecycle{Kind: status.Started, App: "db", Time: now.Add(time.Second)}) // within the slack
	r.Progress(running(0, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadBegan})
	r.Progress(running(1, 2))
	r.Observe(status.Lifecycle{Kind: status.Started, App: "web", Time: now.Add(2 * time.Second)}) // longer timeout
	r.Progress(running(1, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadEnded, Outcome: status.ReloadCompleted})
	r.Progress(running(1, 2, "web"))
	r.Tick()
	// After the start, starts extend nothing.
	r.Observe(status.Lifecycle{Kind: status.Started, App: "web", Time: time.Now()})
	r.Progress(running(1, 2, "web"))
	check(t, rec.msgs,
		`STATUS=0 of 2 apps ready`,
		`EXTEND_TIMEOUT_USEC=4[45]\d{6}`, // 30s + 10s + 5s
		`STATUS=1 of 2 apps ready`,
		`EXTEND_TIMEOUT_USEC=12[67]\d{6}`, // 2s + 2m + 5s
		`READY=1\nSTATUS=1 of 2 apps ready; failed: web`,
		`WATCHDOG=1`)
}

// Overlapping reloads: one RELOADING=1 each, one READY=1 when none is
// left; the outcome is the last one's; progress lines wait meanwhile.
func TestReloads(t *testing.T) {
	r, rec, _ := newTest(t)
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadBegan})
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadBegan, App: "web"})
	r.Progress(running(1, 2)) // a stop-first replacement: no STATUS while reloading
	r.Observe(status.Lifecycle{Kind: status.ReloadEnded, Outcome: status.ReloadCompleted})
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadEnded, App: "web", Outcome: status.ReloadAborted})
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadBegan})
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadEnded, Outcome: status.ReloadRejected,
		Detail: "reload rejected; everything keeps running as it was:\n\ncluster.hcl:3,1: Error: Unclosed configuration block\n  more"})
	r.Progress(running(2, 2))
	r.Progress(running(1, 2)) // a crash after the reload
	check(t, rec.msgs,
		`READY=1\nSTATUS=2 of 2 apps ready`,
		`RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading`,
		`RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading`,
		`READY=1\nSTATUS=reload of web aborted, the old instances keep serving; 2 of 2 apps ready`,
		`RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading`,
		`READY=1\nSTATUS=reload rejected, everything keeps running as it was: cluster.hcl:3,1: Error: Unclosed configuration block; 2 of 2 apps ready`,
		`STATUS=1 of 2 apps ready`)
}

// The drain: STOPPING=1 once, and nothing after it but pings, even for a
// reload the drain cancelled.
func TestDrain(t *testing.T) {
	r, rec, _ := newTest(t)
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadBegan})
	r.Progress(running(2, 2))
	r.Observe(status.Lifecycle{Kind: status.ReloadEnded, Outcome: status.ReloadCancelled})
	r.Progress(status.Progress{Phase: "draining", Ready: 0, Total: 2})
	r.Progress(status.Progress{Phase: "forcing"})
	r.Tick()
	check(t, rec.msgs,
		`READY=1\nSTATUS=2 of 2 apps ready`,
		`RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading`,
		`STOPPING=1\nSTATUS=stopping: draining every app`,
		`WATCHDOG=1`)
}

// MAINPID= goes with the first message that reaches the manager; a failing
// send is logged once per run of failures.
func TestMainPIDAndFailures(t *testing.T) {
	r, rec, logs := newTest(t)
	r.mainPID = 77
	rec.fail = true
	r.Progress(running(0, 1))
	r.Tick()
	rec.fail = false
	r.Tick()
	r.Tick()
	rec.fail = true
	r.Tick()
	check(t, rec.msgs, `MAINPID=77\nWATCHDOG=1`, `WATCHDOG=1`)
	if len(*logs) != 2 {
		t.Errorf("logged %q, want one line per run of failures", *logs)
	}
}

// A hostile app name cannot add an assignment to a STATUS= line.
func TestStatusIsOneLine(t *testing.T) {
	r, rec, _ := newTest(t)
	r.Progress(running(0, 1, "x\nREADY=1"))
	check(t, rec.msgs, `READY=1\nSTATUS=0 of 1 app ready; failed: x READY=1`)
}
