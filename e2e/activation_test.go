//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// restartLoad is a bounded load: workers send requests, each on a new
// connection, until stopped or the cap is reached, and count what failed
// and how long each waited.
type restartLoad struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu sync.Mutex
	// attempted and failed count every request, refused those the port
	// refused; errs keeps the first few errors.
	attempted, failed, refused int
	errs                       []string
	// byPID counts answers by the pid of the instance that answered.
	byPID map[int]int
	// since is when the restart began; waitMax is the longest a request
	// started after it waited (maxAll: of every request).
	since            time.Time
	waitMax, waitAll time.Duration
	changed          chan struct{}
}

const loadCap = 20000

func startLoad(url string, workers int) *restartLoad {
	l := &restartLoad{url: url, stop: make(chan struct{}), byPID: map[int]int{}, changed: make(chan struct{})}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.mu.Lock()
				if l.attempted >= loadCap {
					l.mu.Unlock()
					return
				}
				l.attempted++
				l.mu.Unlock()
				t0 := time.Now()
				a, err := getWith(client, l.url)
				took := time.Since(t0)
				l.mu.Lock()
				if err != nil {
					l.failed++
					if errors.Is(err, syscall.ECONNREFUSED) {
						l.refused++
					}
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err.Error())
					}
				} else {
					l.byPID[a.PID]++
				}
				l.waitAll = max(l.waitAll, took)
				if !l.since.IsZero() && t0.After(l.since) {
					l.waitMax = max(l.waitMax, took)
				}
				close(l.changed)
				l.changed = make(chan struct{})
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// waitAnswers waits until instances other than those in old answered n
// requests, and returns their pids.
func (l *restartLoad) waitAnswers(t *testing.T, old map[int]bool, n int) map[int]bool {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		l.mu.Lock()
		got, now := 0, map[int]bool{}
		for pid, c := range l.byPID {
			if !old[pid] {
				got += c
				now[pid] = true
			}
		}
		changed, attempted := l.changed, l.attempted
		l.mu.Unlock()
		if got >= n {
			return now
		}
		if attempted >= loadCap {
			t.Fatalf("the load reached its cap of %d requests before %d answers from new instances", loadCap, n)
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %d answers from new instances within 2 minutes (%d so far)", n, got)
		}
	}
}

// Issue 16: clusterrun restarted under load on a socket from socket
// activation refuses no connection. systemd-socket-activate makes the
// socket; its child, the test helper's "hold" mode, keeps it open and runs
// clusterrun twice in a row with it, as a .socket unit outlives `systemctl
// restart`. The first run takes the socket by its listener's name, the
// second by `address = "systemd:http"`; a second passed socket that no
// listener takes is closed with a warning.
// In proxy mode clusterrun accepts on the passed socket itself.
func TestSocketActivationRestartUnderLoad(t *testing.T) {
	heavy(t)
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate (Debian package systemd) is not installed")
	}
	for _, mode := range []string{"shared", "proxy"} {
		t.Run(mode, func(t *testing.T) { restartUnderLoad(t, sa, mode) })
	}
}

func restartUnderLoad(t *testing.T, sa, mode string) {
	dir := t.TempDir()
	// systemd-socket-activate takes no port 0: the test picks a free one.
	port := freePort(t)
	const listenerAt = `address = "127.0.0.1:%d"`
	cfgText := fmt.Sprintf(`
listener "http" {
  `+listenerAt+`
  mode = "%s"
}
app "web" {
  command   = ["{{goHTTP}}"]
  instances = 2
  listeners = ["http"]
  ready { check = "notify" }
  stop { timeout = "20s" }
}
`, port, mode)
	cfg := writeConfig(t, dir, cfgText)
	rt, err := os.MkdirTemp("", "cr-rt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(rt)
	marker := fmt.Sprintf("CLUSTERRUN_E2E_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	// systemd-socket-activate passes its children only what -E names.
	args := []string{"-l", fmt.Sprintf("127.0.0.1:%d", port), "-l", filepath.Join(dir, "extra.sock"), "--fdname=http:extra"}
	for _, kv := range []string{"XDG_RUNTIME_DIR=" + rt, "NO_COLOR=1", marker, "GORACE=atexit_sleep_ms=0"} {
		args = append(args, "-E", kv)
	}
	args = append(args, helper, "hold", "2", bin, "__clusterrun_exec", bin, "clusterrun", "up", "-f", cfg)
	cmd := exec.Command(sa, args...)
	cmd.Dir = dir
	out := newLineLog()
	pipe, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, out: out, marker: marker}
	fed := make(chan struct{})
	go func() { out.feed(pipe); close(fed) }()
	exited := make(chan struct{})
	go func() { <-fed; cmd.Wait(); close(exited) }()
	defer func() {
		for _, p := range markedPids(marker) {
			syscall.Kill(p, syscall.SIGTERM)
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("output:\n%s", out.all())
		}
		r.assertNoSurvivors()
	}()
	r.waitLine(0, `Listening on 127\.0\.0\.1:\d+ as 3`, 30*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// The first connection starts the holder and the first run, and
	// waits in the socket's queue until an instance takes it.
	if _, err := get(t, url); err != nil {
		t.Fatalf("first request: %v", err)
	}
	line, _ := r.waitLine(0, `holder: run 1 pid \d+`, 30*time.Second)
	run1, _ := strconv.Atoi(regexp.MustCompile(`\d+$`).FindString(line))
	r.waitLine(0, `listening: http on 127\.0\.0\.1:`+strconv.Itoa(port)+` \(`+mode+`\)`, 30*time.Second)
	r.waitLine(0, `socket activation passed a socket named "extra" \(fd 4\) that no listener takes.*closed`, 30*time.Second)

	const workers = 4
	load := startLoad(url, workers)
	defer func() { close(load.stop); load.wg.Wait() }()
	old := load.waitAnswers(t, nil, 200)

	// Restart: the second run takes the socket as systemd:http.
	writeConfig(t, dir, strings.Replace(cfgText, fmt.Sprintf(listenerAt, port), `address = "systemd:http"`, 1))
	from := r.mark()
	load.mu.Lock()
	load.since = time.Now()
	load.mu.Unlock()
	syscall.Kill(run1, syscall.SIGTERM)
	r.waitLine(from, `holder: run 1 exited with status 0`, 60*time.Second)
	line, _ = r.waitLine(from, `holder: run 2 pid \d+`, 30*time.Second)
	run2, _ := strconv.Atoi(regexp.MustCompile(`\d+$`).FindString(line))
	r.waitLine(from, `listening: http on 127\.0\.0\.1:`+strconv.Itoa(port)+` \(`+mode+`\)`, 30*time.Second)
	load.waitAnswers(t, old, 200)
	close(load.stop)
	load.wg.Wait()
	load.stop = make(chan struct{})

	load.mu.Lock()
	attempted, failed, refused, errs, waitMax, waitAll := load.attempted, load.failed, load.refused, load.errs, load.waitMax, load.waitAll
	var pids []int
	for p := range load.byPID {
		pids = append(pids, p)
	}
	load.mu.Unlock()
	sort.Ints(pids)
	t.Logf("%s: restart under load: %d requests (a new connection each), %d refused, %d failed, longest wait %v after the restart began (%v overall); answered by pids %v",
		mode, attempted, refused, failed, waitMax.Round(time.Millisecond), waitAll.Round(time.Millisecond), pids)
	switch {
	case refused != 0:
		t.Errorf("%d of %d connections were refused across the restart: %q", refused, attempted, errs)
	case mode == "proxy" && failed <= workers:
		// Known gap: a connection the old runner's proxy accepted in the
		// instant before it stopped accepting, whose backend the drain
		// removed while it dialed, waits for a backend and is reset when
		// the runner exits: at most one per client in flight. Closing it
		// needs the drain to wait for such connections (runner, proxy).
		if failed > 0 {
			t.Logf("proxy: %d connections accepted by the old runner in the instant of the stop were reset: %q", failed, errs)
		}
	case failed != 0:
		t.Errorf("%d of %d requests failed across the restart: %q", failed, attempted, errs)
	}

	syscall.Kill(run2, syscall.SIGTERM)
	r.waitLine(from, `holder: run 2 exited with status 0`, 60*time.Second)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the holder did not exit after its second run")
	}
}
