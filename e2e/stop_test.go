//go:build linux

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// Issue 12: with a stop timeout under a second in proxy mode, a stopped
// instance could be SIGKILLed without ever getting SIGTERM (the proxy's
// drain wait held the signal back while the stop timer already ran). Now
// the runner takes it out of routing, waits for its connections (bounded by
// stop.timeout), signals it, and only then starts the stop timer. Twenty
// reloads under load, with requests slower than the stop timeout: every
// stopped instance logs its SIGTERM, whether it then exited on its own or
// had to be killed, and no request fails.
func TestProxyStopSignalComesBeforeAnyKill(t *testing.T) {
	heavy(t)
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}
app "web" {
  command   = ["{{helper}}", "logterm"]
  instances = 2
  listeners = ["http"]
  stop   { timeout = "300ms" }
  reload { parallel = 2 }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	// Quick requests, and requests slower than stop.timeout (400ms before
	// their first byte): a stopped instance has some under way.
	stop := loadWith(t, loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: 2,
		Duration: 5 * time.Minute, MaxRequests: 10_000_000, Timeout: 10 * time.Second})
	stopSlow := loadWith(t, loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Path: "/slow", Workers: 4,
		Duration: 5 * time.Minute, MaxRequests: 10_000_000, Timeout: 10 * time.Second})
	const reloads = 20
	exit := `web\.\d \(pid \d+\) (exited with status \d+|was killed by SIG\w+)`
	for i := 0; i < reloads; i++ {
		m := r.mark()
		r.signal(syscall.SIGHUP)
		r.waitLine(m, `web: reload complete: 2 of 2 instances replaced`, 60*time.Second)
		// Each round ends when both replaced instances are gone.
		_, next := r.waitLine(m, exit, 60*time.Second)
		r.waitLine(next, exit, 60*time.Second)
	}
	res, slow := stop(), stopSlow()
	r.signal(syscall.SIGTERM)
	code := r.wait(30 * time.Second)
	log := r.out.all()

	// Every process that exited, and how.
	exits := regexp.MustCompile(`web\.\d \(pid (\d+)\) (exited with status \d+|was killed by (SIG\w+))`).FindAllStringSubmatch(log, -1)
	termed := map[string]bool{}
	for _, m := range regexp.MustCompile(`SIGTERM received, pid (\d+)`).FindAllStringSubmatch(log, -1) {
		termed[m[1]] = true
	}
	killed := 0
	for _, e := range exits {
		if !termed[e[1]] {
			t.Errorf("pid %s %s without ever getting SIGTERM", e[1], e[2])
		}
		if e[3] == "SIGKILL" {
			killed++
		}
	}
	if want := 2*reloads + 2; len(exits) != want {
		t.Errorf("%d exits in the runner's log, want %d (2 per reload, 2 at the end)", len(exits), want)
	}
	quiesceTimeouts := strings.Count(log, "sending SIGTERM anyway")
	t.Logf("%d reloads under load: %d instances stopped, every one got SIGTERM first; %d then killed at stop.timeout; "+
		"%d signalled when the wait for their connections timed out; load: %s; slow requests: %s",
		reloads, len(exits), killed, quiesceTimeouts, loadgen.Summary(res, res.Samples), loadgen.Summary(slow, slow.Samples))
	requireNoFailures(t, "20 reloads with stop.timeout = 300ms", res)
	// A slow request lasts longer than stop.timeout: one under way on an
	// instance that had to be killed at its stop timeout (on a busy machine
	// the instance may not finish it in time) is lost with it, and only
	// those: at most one per slow worker for each kill.
	c := loadgen.Counts(slow.Samples)
	if n := loadgen.Failed(slow.Samples); n > 4*killed || n != c[loadgen.Reset] || len(slow.Samples) < reloads {
		t.Errorf("slow requests (%d instances killed at stop.timeout): %s", killed, loadgen.Summary(slow, slow.Samples))
	}
	if code != 0 && killed == 0 {
		t.Errorf("exit %d", code)
	}
}
