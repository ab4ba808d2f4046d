//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/bench/loadgen"
)

// An unmodified Node app whose SIGTERM handler calls server.close() (as
// Express's and Node's own docs show) loses no keep-alive request across
// reloads: the preload turns that close into a graceful one (stop
// accepting, Connection: close on the next response of every open
// connection, idle ones closed after a grace), where Node's own close
// would end idle keep-alive connections at once and race the clients'
// next requests. Every instance still exits 0.
func TestNodePreloadKeepsKeepAliveClientsThroughReloads(t *testing.T) {
	heavy(t)
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["node", "{{repo}}/e2e/testdata/nodeclose/server.js"]
  instances = 4
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	port := r.port("http")
	r.waitLine(0, `web: 4 of 4 instances ready`, 60*time.Second)
	stop := loadWith(t, loadgen.Options{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), Workers: 16, KeepAlive: true,
		Duration: 2 * time.Minute, MaxRequests: 2_000_000, Timeout: 10 * time.Second,
	})
	for round := 0; round < 3; round++ {
		if out, errOut, code := r.cli("reload"); code != 0 {
			stop()
			t.Fatalf("reload %d: exit %d\n%s%s", round+1, code, out, errOut)
		}
	}
	res := stop()
	requireNoFailures(t, "keep-alive load through 3 reloads", res)
	if n := len(loadgen.PIDs(res.Samples)); n < 8 {
		t.Errorf("%d pids answered; the reloads did not move the load to new instances", n)
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	r.requireCleanExits()
}

// A response a handler is still preparing when the stop comes says
// Connection: close and ends its connection, and a keep-alive connection
// left idle is closed after the grace: the instance's server.close() calls
// back and it exits 0. The preload marks such responses where Node writes
// their head, not from each request's event.
func TestNodePreloadClosesResponsesUnderWayAtStop(t *testing.T) {
	t.Parallel()
	r := startRunner(t, `
listener "http" {
  address = "127.0.0.1:0"
}
app "web" {
  command   = ["node", "{{repo}}/e2e/testdata/nodeclose/server.js"]
  instances = 1
  listeners = ["http"]
  ready { check = "notify" }
}
`)
	addr := fmt.Sprintf("127.0.0.1:%d", r.port("http"))
	r.waitLine(0, `web: 1 of 1 instances ready`, 60*time.Second)

	// Two keep-alive connections: one that had an answer and is idle at
	// the stop, one whose request the app is still working on.
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(90 * time.Second)) // a hang, not a bound
		return c, bufio.NewReader(c)
	}
	idle, idleR := dial()
	fmt.Fprintf(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatalf("GET / before the stop: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.Close {
		t.Fatalf("GET / before the stop said Connection: close")
	}
	mark := r.mark()
	held, heldR := dial()
	fmt.Fprintf(held, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
	r.waitLine(mark, `holds a request`, 30*time.Second)

	r.signal(syscall.SIGTERM)
	resp, err = http.ReadResponse(heldR, nil)
	if err != nil {
		t.Fatalf("the request under way at the stop got no answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("the answer under way at the stop: %s, Connection %q; want 200 and close", resp.Status, resp.Header.Get("Connection"))
	}
	for _, c := range []struct {
		name string
		r    *bufio.Reader
	}{{"the connection of that answer", heldR}, {"the idle keep-alive connection", idleR}} {
		if b, err := c.r.ReadByte(); err != io.EOF {
			t.Errorf("%s: read %q, %v; want the instance to close it (EOF)", c.name, b, err)
		}
	}
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	r.requireCleanExits()
}

// "clusterrun run" runs one app without a file, as pm2 start -i does: the
// instances share the port, the other commands find the runner from a
// directory without a cluster.hcl, a reload replaces every instance, and
// SIGTERM drains it.
func TestRunWithoutAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRunnerWith(t, dir, "", spawnOpts{args: []string{"run", "-i", "2", "-p", "127.0.0.1:0",
		"--", "node", filepath.Join(repo, "bench/reload/hello.js")}})
	port := r.port("hello")
	r.waitLine(0, `hello: 2 of 2 instances ready`, 60*time.Second)
	before := instancesAnswering(t, port, 2)
	out, errOut, code := r.cli("reload")
	if code != 0 || !strings.Contains(out, "hello: reload complete: 2 of 2 instances replaced") {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}
	// The reload is complete once the new instances are ready; the old
	// ones may still be accepting until their stop signal.
	for _, pid := range before {
		r.waitLine(0, fmt.Sprintf(`\(pid %d\) exited`, pid), 30*time.Second)
	}
	after := instancesAnswering(t, port, 2)
	for i := range before {
		if before[i] == after[i] {
			t.Errorf("instance %d was not replaced (pid %d)", i, before[i])
		}
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	r.requireCleanExits()
}
