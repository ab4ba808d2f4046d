//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// What the proxy's own limits do for users: requests wait in the runner
// rather than in a full backlog, clients keep their instance with ip-hash,
// a stopped instance is routed around, and a flood of idle clients never
// takes the descriptors an instance needs to start.

// proxyStatus is the part of status --json these tests read.
type proxyStatus struct {
	Listeners []struct {
		Name          string `json:"name"`
		Conns         int    `json:"conns"`
		MaxConns      int    `json:"max_conns"`
		Queued        int    `json:"queued"`
		QueueTimeouts int64  `json:"queue_timeouts"`
	} `json:"listeners"`
	Apps []struct {
		Procs []struct {
			Instance   int           `json:"instance"`
			PID        int           `json:"pid"`
			Role       string        `json:"role"`
			Waiting    int           `json:"waiting"`
			OldestWait time.Duration `json:"oldest_wait_ns"`
			Hung       bool          `json:"hung"`
		} `json:"procs"`
	} `json:"apps"`
}

func (r *runner) proxyStatus() proxyStatus {
	r.t.Helper()
	out, errOut, code := r.cli("status", "--json")
	if code != 0 {
		r.t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	var st proxyStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		r.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// Two instances of an app that serves one request at a time (20 ms each)
// with Python's listen backlog of 5, and 32 clients opening a new connection
// per request: the runner holds the connections that the instances' accept
// queues cannot, instead of sending SYNs the kernel drops (one-second
// retries, and failures past the connect timeout). Not one request fails.
func TestProxyQueuesForAOneAtATimeApp(t *testing.T) {
	heavy(t)
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}
app "web" {
  command   = ["python3", "{{repo}}/e2e/testdata/onebyone/server.py"]
  instances = 2
  listeners = ["http"]
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	const workers, requests = 32, 640
	res := loadgen.Run(context.Background(), loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: workers,
		Duration: 5 * time.Minute, MaxRequests: requests, Timeout: 60 * time.Second})
	t.Logf("%d clients, a new connection per request: %s", workers, loadgen.Summary(res, res.Samples))
	if n := loadgen.Failed(res.Samples); n != 0 || len(res.Samples) != requests {
		t.Fatalf("%d of %d requests failed (want none of %d)", n, len(res.Samples), requests)
	}
	if st := r.proxyStatus(); len(st.Listeners) != 1 || st.Listeners[0].QueueTimeouts != 0 {
		t.Fatalf("status: %+v, want no queue timeouts", st.Listeners)
	}
}

// clientFrom is an HTTP client whose connections come from source address
// src (any of 127.0.0.0/8 on Linux), one connection per request.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
}

// With ip-hash, each client address is answered by one instance, request
// after request; after a reload, by one new instance.
func TestProxyIPHashKeepsClientsAcrossAReload(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
  balance = "ip-hash"
}
app "web" {
  command   = ["python3", "{{repo}}/e2e/testdata/portapp/server.py"]
  instances = 3
  listeners = ["http"]
  ready { timeout = "20s" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	const clients = 30
	round := func() map[string]int {
		where := map[string]int{}
		for i := range clients {
			src := fmt.Sprintf("127.20.%d.%d", i/200, 1+i%200)
			c := clientFrom(src)
			for j := range 3 {
				a, err := getWith(c, url)
				if err != nil {
					t.Fatalf("client %s, request %d: %v", src, j, err)
				}
				if p, ok := where[src]; ok && p != a.PID {
					t.Fatalf("client %s was answered by pid %d, then by pid %d", src, p, a.PID)
				}
				where[src] = a.PID
			}
		}
		return where
	}
	before := round()
	old := map[int]bool{}
	for _, pid := range before {
		old[pid] = true
	}
	if len(old) < 2 {
		t.Fatalf("%d clients all went to one instance: %v", clients, before)
	}
	m := r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web: reload complete: 3 of 3 instances replaced`, 60*time.Second)
	after := round()
	for src, pid := range after {
		if old[pid] {
			t.Fatalf("after the reload, client %s was answered by pid %d of the old release", src, pid)
		}
	}
}

// An instance that stops answering (SIGSTOP) without a health check, with
// round-robin: once a connection has waited on it for 2s, the proxy sends
// it no new connection but one probe at a time, so the load goes on through
// the other two instead of a third of the requests hanging on it (the
// kernel keeps completing connections into its large backlog, so every
// connect succeeds); status and the log say so; once it answers again it is
// routed to again.
func TestProxyStoppedInstanceIsRoutedAround(t *testing.T) {
	heavy(t)
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
  balance = "round-robin"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 3
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 3 of 3 instances ready`, 30*time.Second)
	stopped := r.servingPids("web")[1]
	m := r.mark()
	if err := syscall.Kill(stopped, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	defer func() {
		if !continued {
			syscall.Kill(stopped, syscall.SIGCONT)
		}
	}()
	// Clients that give up after 3s, as real ones do. Without the hung
	// mark a third of the 600 requests would each hang until then.
	const workers, requests = 6, 600
	res := loadgen.Run(context.Background(), loadgen.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: workers,
		Duration: 5 * time.Minute, MaxRequests: requests, Timeout: 3 * time.Second})
	t.Logf("SIGSTOP of one of 3 instances, round-robin: %s", loadgen.Summary(res, res.Samples))
	failed := loadgen.Failed(res.Samples)
	if failed > 2*workers {
		t.Errorf("%d of %d requests failed; only those sent to the stopped instance before it was marked (at most one per worker) and its probes may", failed, len(res.Samples))
	}
	r.waitLine(m, `has answered nothing for .* while \d+ connections wait on it`, 30*time.Second)
	hung := func() bool {
		for _, a := range r.proxyStatus().Apps {
			for _, p := range a.Procs {
				if p.PID == stopped {
					return p.Hung
				}
			}
		}
		return false
	}
	if !hung() {
		t.Errorf("status does not show the stopped instance as hung: %+v", r.proxyStatus().Apps)
	}
	if out, _, _ := r.cli("status"); !strings.Contains(out, "hung") {
		t.Errorf("status does not show the hung instance:\n%s", out)
	}
	m = r.mark()
	syscall.Kill(stopped, syscall.SIGCONT)
	continued = true
	// The next probe finds it answering.
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for i := 0; i < 100 && hung(); i++ {
		if _, err := get(t, url); err != nil {
			t.Fatalf("request %d after SIGCONT: %v", i, err)
		}
	}
	r.waitLine(m, `answers again; routing to it`, 30*time.Second)
}

// fdCount is the number of open descriptors of pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// With its soft descriptor limit lowered at run time (prlimit) and more
// idle clients than it allows, the runner holds what its budget allows and
// leaves the rest in the listen backlog: a killed instance restarts, the
// control socket answers, and once the clients leave, the descriptors are
// back at once (no pipes waiting for a garbage collection).
func TestProxyIdleClientsLeaveRoomForInstances(t *testing.T) {
	heavy(t)
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
  mode    = "proxy"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 2
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	pid := r.status().PID
	base := fdCount(t, pid)
	const soft = 512
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: soft, Max: hardLimit(t, pid)}, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	// The proxies re-read the limit at most a second after it changed.
	faultEventually(t, 10*time.Second, "the proxy's budget to follow the lowered limit", func() bool {
		st := r.proxyStatus()
		return len(st.Listeners) == 1 && st.Listeners[0].MaxConns < soft/2
	})
	most := r.proxyStatus().Listeners[0].MaxConns
	const clients = 400 // 800 descriptors if the runner took them all
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range clients {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		if err != nil {
			t.Fatalf("idle client %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	faultEventually(t, 30*time.Second, "the runner to take all the clients its budget allows", func() bool {
		return r.proxyStatus().Listeners[0].Conns == most
	})
	held := fdCount(t, pid)
	t.Logf("soft limit %d: %d of %d idle clients taken, runner descriptors %d (%d before the clients)", soft, most, clients, held, base)
	if held >= soft {
		t.Fatalf("the runner holds %d descriptors with a soft limit of %d", held, soft)
	}
	m := r.mark()
	victim := r.servingPids("web")[1]
	syscall.Kill(victim, syscall.SIGKILL)
	r.waitLine(m, `web.1 ready after`, 30*time.Second)
	if st := r.status(); len(st.Apps) != 1 {
		t.Fatalf("status after the restart: %+v", st)
	}
	if strings.Contains(r.out.all(), "too many open files") {
		t.Fatalf("the runner ran out of descriptors:\n%s", r.out.all())
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	faultEventually(t, 10*time.Second, "the runner's descriptors to come back down once the clients left", func() bool {
		return fdCount(t, pid) <= base+4
	})
}

// hardLimit is pid's hard RLIMIT_NOFILE, which an unprivileged prlimit
// must not raise.
func hardLimit(t *testing.T, pid int) uint64 {
	t.Helper()
	var cur unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &cur); err != nil {
		t.Fatal(err)
	}
	return cur.Max
}
