package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/clusterrun/clusterrun/bench/loadgen"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
)

// Session is one launched target: N instances answering on Addr.
type Session struct {
	T    Target
	N    int
	Addr string
	// ClkTck is the unit of /proc/PID/stat's utime and stime
	// (getconf CLK_TCK).
	ClkTck int
	// seen are the instances' pids with their start times, to sweep up any
	// that outlive Stop (a start time tells a reused pid apart).
	seen map[int]uint64
}

// Launch starts t with n instances on a free port and checks that all of
// them answer. On error nothing is left running, and the error carries the
// target's output.
func Launch(ctx context.Context, t Target, n, clkTck int) (*Session, error) {
	port, err := report.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Session{T: t, N: n, Addr: "127.0.0.1:" + strconv.Itoa(port), ClkTck: clkTck, seen: map[int]uint64{}}
	if err := t.Start(ctx, port); err != nil {
		log := t.Log()
		s.Close()
		return nil, fmt.Errorf("%s: cannot start %d instances: %w\n--- its output:\n%s", t.Name(), n, err, log)
	}
	if err := s.Check(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Check makes sure that exactly N distinct instances answer, with new
// connections from 8 concurrent clients, at most 4000 requests in 20 s.
func (s *Session) Check(ctx context.Context) error {
	pids, sent, err := answering(ctx, s.Addr, s.N)
	for pid := range pids {
		if st, ok := startTime(pid); ok {
			s.seen[pid] = st
		}
	}
	if err != nil || len(pids) != s.N {
		if err == nil {
			err = errors.New("no error")
		}
		return fmt.Errorf("%s: %d of %d instances answered on %s in %d requests (pids %v; last error: %v); not measuring a broken setup\n--- its output:\n%s",
			s.T.Name(), len(pids), s.N, s.Addr, sent, sortedKeys(pids), err, s.T.Log())
	}
	return nil
}

func answering(ctx context.Context, addr string, n int) (map[int]int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	var (
		mu      sync.Mutex
		pids    = map[int]int{}
		sent    int
		lastErr error
		wg      sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				enough := len(pids) >= n || sent >= 4000
				sent++
				mu.Unlock()
				if enough {
					return
				}
				pid, err := get(ctx, client, "http://"+addr+"/")
				mu.Lock()
				if err != nil {
					lastErr = err
				} else {
					pids[pid]++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if lastErr == nil && ctx.Err() != nil && len(pids) < n {
		lastErr = ctx.Err()
	}
	return pids, sent, lastErr
}

func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	pid := loadgen.PidOf(body)
	if pid == 0 {
		return 0, fmt.Errorf("no pid in %q", body)
	}
	return pid, nil
}

// Usage is the supervisor's CPU (% of one core, NaN when there is no
// supervisor) and PSS (bytes, from smaps_rollup) over a window, and Ticks,
// the CPU in clock ticks. For a target with a DataPath, the supervisor is
// every process of it, summed (nginx's master and workers).
type Usage struct {
	CPU   float64
	PSS   int64
	Ticks int64
}

// dataPather is a target whose processes on the data path are more than
// its supervisor.
type dataPather interface{ DataPath() []int }

// measured returns the pids whose CPU and PSS the session measures: the
// target's data path, or its supervisor, or none.
func (s *Session) measured() []int {
	if d, ok := s.T.(dataPather); ok {
		return d.DataPath()
	}
	if pid := s.T.Supervisor(); pid != 0 {
		return []int{pid}
	}
	return nil
}

// ticksOf sums cpuTicks over pids.
func ticksOf(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		t, err := cpuTicks(pid)
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		sum += t
	}
	return sum, nil
}

// pssOf sums the PSS of pids.
func pssOf(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		sum += report.Memory(pid).PSS
	}
	return sum
}

// PerRequest is the measured processes' CPU per complete response, in
// microseconds (NaN without a supervisor or a response).
func (m Measurement) PerRequest(clkTck int) float64 {
	if math.IsNaN(m.CPU) || m.Requests == 0 || clkTck == 0 {
		return math.NaN()
	}
	return float64(m.Ticks) / float64(clkTck) / float64(m.Requests) * 1e6
}

// Idle measures the supervisor over d with no traffic.
func (s *Session) Idle(ctx context.Context, d time.Duration) (Usage, error) {
	pids := s.measured()
	if len(pids) == 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return Usage{}, ctx.Err()
		}
		return Usage{CPU: math.NaN()}, nil
	}
	t0 := time.Now()
	c0, err := ticksOf(pids)
	if err != nil {
		return Usage{}, fmt.Errorf("%s: supervisor: %w", s.T.Name(), err)
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return Usage{}, ctx.Err()
	}
	c1, err := ticksOf(pids)
	if err != nil {
		return Usage{}, fmt.Errorf("%s: supervisor: %w", s.T.Name(), err)
	}
	return Usage{CPU: s.percent(c1-c0, time.Since(t0)), PSS: pssOf(pids), Ticks: c1 - c0}, nil
}

// Measurement is one load run with the supervisor's CPU over it and its
// peak PSS during it.
type Measurement struct {
	Result
	Usage
}

// Load runs l against the session and measures the supervisor meanwhile.
// It fails if the supervisor dies or if more than N pids answered (an
// instance was replaced under load).
func (s *Session) Load(ctx context.Context, l Load) (Measurement, error) {
	pids := s.measured()
	var m Measurement
	m.CPU = math.NaN()
	var c0 int64
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	if len(pids) != 0 {
		var err error
		if c0, err = ticksOf(pids); err != nil {
			return m, fmt.Errorf("%s: supervisor: %w", s.T.Name(), err)
		}
		go func() {
			var most int64
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				most = max(most, pssOf(pids))
				select {
				case <-stop:
					peak <- most
					return
				case <-tick.C:
				}
			}
		}()
	}
	t0 := time.Now()
	res, err := l.Run(ctx, s.Addr)
	took := time.Since(t0)
	close(stop)
	if len(pids) != 0 {
		m.PSS = <-peak
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w", s.T.Name(), err)
	}
	m.Result = res
	if len(pids) != 0 {
		c1, err := ticksOf(pids)
		if err != nil {
			return m, fmt.Errorf("%s: supervisor died under load: %w\n--- its output:\n%s", s.T.Name(), err, s.T.Log())
		}
		m.CPU = s.percent(c1-c0, took)
		m.Ticks = c1 - c0
	}
	if len(res.PIDs) > s.N {
		return m, fmt.Errorf("%s: %d pids answered, not %d: an instance was replaced under load (%v)\n--- its output:\n%s",
			s.T.Name(), len(res.PIDs), s.N, sortedKeys(res.PIDs), s.T.Log())
	}
	return m, nil
}

func (s *Session) percent(ticks int64, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return 100 * float64(ticks) / float64(s.ClkTck) / d.Seconds()
}

// Close stops the target, then kills any instance process that is still
// there two seconds later.
func (s *Session) Close() {
	s.T.Stop()
	deadline := time.Now().Add(2 * time.Second)
	for pid, st := range s.seen {
		for {
			now, ok := startTime(pid)
			if !ok || now != st {
				break // gone, or a zombie, or the pid was reused
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "%s: instance pid %d outlived its runner: killing it\n", s.T.Name(), pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// stat returns the fields of /proc/PID/stat after the command name:
// index 0 is field 3 (state) of proc(5).
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	return f, nil
}

// cpuTicks returns utime+stime of the process itself (all its threads, not
// its children), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	if f[0] == "Z" {
		return 0, fmt.Errorf("pid %d is a zombie", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	k, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	return u + k, nil
}

// startTime returns field 22 of a live, non-zombie process.
func startTime(pid int) (uint64, bool) {
	f, err := stat(pid)
	if err != nil || f[0] == "Z" {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}
