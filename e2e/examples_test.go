//go:build linux

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowMS is how long the slow requests of the example tests take: long
// enough to be under way when a reload reaches their instance (a rollout
// of 4 instances takes about a second here), well inside the examples' 10s
// stop timeout, which counts from the stop signal.
const slowMS = 4000

// Every example of examples/ is run from its own file, as shipped: only
// its listener moves to a free port. Slow requests, as many as there are
// instances, are under way when a reload replaces the instances and again
// when SIGTERM stops them;
// each request is answered, and the runner logs an exit status 0 for every
// process it started.
func TestExamplesDrainOnReloadAndStop(t *testing.T) {
	t.Parallel()
	for _, ex := range []struct {
		name     string // folder under examples/
		file     string
		listener string // whose port the requests go to
		app      string // the app that serves it
		env      func(t *testing.T) []string
	}{
		{name: "go-http", file: "cluster.hcl", listener: "http", app: "web"},
		{name: "node-http", file: "cluster.hcl", listener: "http", app: "web"},
		{name: "python-http", file: "cluster.hcl", listener: "http", app: "web"},
		{name: "procfile", file: "Procfile", listener: "web", app: "web", env: func(t *testing.T) []string {
			// foreman's base port comes from PORT (5000 without it).
			return []string{"PORT=" + strconv.Itoa(freePort(t))}
		}},
		{name: "docker", file: "cluster.hcl", listener: "http", app: "web", env: func(*testing.T) []string {
			// The image has go-http on its PATH.
			return []string{"PATH=" + filepath.Dir(goHTTP) + string(os.PathListSeparator) + os.Getenv("PATH")}
		}},
	} {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			dir, cfg := exampleConfig(t, ex.name, ex.file)
			var o spawnOpts
			if ex.env != nil {
				o.env = ex.env(t)
			}
			r := startRunnerWith(t, dir, cfg, o)
			port := r.port(ex.listener)
			r.waitLine(0, ex.app+`: \d+ of \d+ instances ready`, 5*time.Minute) // go-http builds first

			old := r.servingPids(ex.app)
			inflight := slowRequests(t, r, ex.app, port)
			out, errOut, code := r.cli("reload")
			if code != 0 || !strings.Contains(out, ex.app+": reload complete") {
				t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
			}
			for _, res := range inflight {
				got := <-res
				if got.err != nil {
					t.Errorf("a request under way during the reload: %v", got.err)
				} else if !hasPid(old, got.a.PID) {
					t.Errorf("a request under way during the reload was answered by pid %d, not by an old instance %v", got.a.PID, old)
				}
			}
			for _, pid := range old {
				r.waitLine(0, fmt.Sprintf(`\(pid %d\) (exited with status|was killed by)`, pid), 30*time.Second)
			}

			inflight = slowRequests(t, r, ex.app, port)
			r.signal(syscall.SIGTERM)
			for _, res := range inflight {
				if got := <-res; got.err != nil {
					t.Errorf("a request under way at SIGTERM: %v", got.err)
				}
			}
			if code := r.wait(30 * time.Second); code != 0 {
				t.Errorf("exit status %d after SIGTERM, want 0", code)
			}
			if n := r.requireCleanExits(); n < 2*len(old) {
				t.Errorf("the runner logged %d processes, want at least %d (the first instances and their replacements)", n, 2*len(old))
			}
		})
	}
}

// exampleConfig returns a copy of examples/NAME/FILE whose listeners are
// moved to a free port and whose apps run in the example's folder, as
// they do from the file there; a Procfile, whose port comes from PORT, is
// used in place.
func exampleConfig(t *testing.T, name, file string) (dir, cfg string) {
	t.Helper()
	folder := filepath.Join(repo, "examples", name)
	if file == "Procfile" {
		return folder, filepath.Join(folder, file)
	}
	src, err := os.ReadFile(filepath.Join(folder, file))
	if err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`(?m)^(\s*address\s*=\s*)"[^"]*"`)
	if len(addr.FindAll(src, -1)) != 1 {
		t.Fatalf("examples/%s/%s: want one listener address to move to a free port", name, file)
	}
	text := addr.ReplaceAllString(string(src), `${1}"127.0.0.1:0"`)
	apps := regexp.MustCompile(`(?m)^app "[^"]+" \{$`)
	if !apps.MatchString(text) {
		t.Fatalf("examples/%s/%s: no app block", name, file)
	}
	text = apps.ReplaceAllStringFunc(text, func(open string) string {
		return open + "\n  dir = " + strconv.Quote(folder)
	})
	dir = t.TempDir()
	cfg = filepath.Join(dir, file)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

type slowResult struct {
	a   answer
	err error
}

// slowRequests sends as many GET /slow requests to port as app has
// serving instances, waits until instances of app have accepted all of
// them, and returns where each request's outcome will arrive. Which
// instance takes which is the kernel's choice (on a busy machine it may
// give them all to one).
func slowRequests(t *testing.T, r *runner, app string, port int) []<-chan slowResult {
	t.Helper()
	// An instance's accepted connections have the public port as their
	// local port, or in proxy mode its own private one.
	local := make(map[int]int) // pid -> local port of its connections
	for _, a := range r.status().Apps {
		if a.Name != app {
			continue
		}
		for _, p := range a.Procs {
			if p.Role != "serving" || p.PID == 0 {
				continue
			}
			local[p.PID] = port
			if _, ps, err := net.SplitHostPort(p.Addr); err == nil {
				local[p.PID], _ = strconv.Atoi(ps)
			}
		}
	}
	if len(local) == 0 {
		t.Fatalf("no serving instance of %s", app)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/slow?ms=%d", port, slowMS)
	slow := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var out []<-chan slowResult
	for range local {
		res := make(chan slowResult, 1)
		out = append(out, res)
		go func() {
			a, err := getWith(slow, url)
			res <- slowResult{a, err}
		}()
	}
	held := 0
	for deadline := time.Now().Add(30 * time.Second); held < len(out); time.Sleep(5 * time.Millisecond) {
		held = 0
		for pid, lp := range local {
			held += len(acceptedConns(t, pid, lp))
		}
		for _, res := range out {
			select {
			case got := <-res:
				t.Fatalf("a slow request ended before all were seen accepted: %+v", got)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances of %s accepted %d of %d requests within 30s (pid: local port %v)", app, held, len(out), local)
		}
	}
	return out
}

func hasPid(pids map[int]int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

var (
	startedRE = regexp.MustCompile(`^clusterrun +\| \S+ started \(pid (\d+)\)`)
	exitedRE  = regexp.MustCompile(`^clusterrun +\| \S+ \(pid (\d+)\) (exited with status \d+|was killed by \S+)`)
)

// requireCleanExits fails the test unless every process the runner
// started exited with status 0, as its log says; it returns how many
// there were.
func (r *runner) requireCleanExits() int {
	r.t.Helper()
	exits := r.exits()
	for pid, how := range exits {
		if how != "exited with status 0" {
			r.t.Errorf("pid %d: %q, want \"exited with status 0\"", pid, how)
		}
	}
	return len(exits)
}

// exits returns how every process the runner started ended, as its log
// says, by pid: "exited with status 0", "was killed by SIGKILL", or "" for
// one whose end it has not logged.
func (r *runner) exits() map[int]string {
	lines, _, _ := r.out.snapshot()
	out := make(map[int]string)
	for _, l := range lines {
		if m := startedRE.FindStringSubmatch(l); m != nil {
			pid, _ := strconv.Atoi(m[1])
			if _, ok := out[pid]; !ok {
				out[pid] = ""
			}
		}
		if m := exitedRE.FindStringSubmatch(l); m != nil {
			pid, _ := strconv.Atoi(m[1])
			out[pid] = m[2]
		}
	}
	return out
}
