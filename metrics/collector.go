package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/clusterrun/clusterrun/status"
)

// instanceStates are the states of status.Instance. Each app exports
// every one of them, zero included, so that a state that empties drops to
// 0 instead of vanishing from the graphs.
var instanceStates = []string{
	"spawning", "starting", "ready", "dying", "stopping", "killing",
	"backoff", "failed", "done", "stopped",
}

// restartReasons and reloadOutcomes are exported at 0 before they first
// happen, so that rate() and increase() see the first one.
var restartReasons = []string{
	status.RestartCrash, status.RestartStopping, status.RestartHealth,
	status.RestartWatchdog, status.RestartMemory, status.RestartManual,
}

var reloadOutcomes = []string{
	status.ReloadCompleted, status.ReloadAborted, status.ReloadRejected,
	status.ReloadSuperseded, status.ReloadCancelled,
}

// The families read from a snapshot. Struct literals of constants: the
// compiler lays them out as data, no code runs at init.
var (
	upDesc         = desc{"clusterrun_up", "Whether the runner answered the scrape's status request (1) or not (0: stopping, or busy past the scrape timeout).", "gauge", nil}
	startedDesc    = desc{"clusterrun_runner_start_time_seconds", "When the runner started, in seconds since the Unix epoch.", "gauge", nil}
	pssDesc        = desc{"clusterrun_runner_pss_bytes", "Proportional set size (PSS, from smaps_rollup) of clusterrun itself, the runner and its guard process together, in bytes: each page counted once, split among the processes that map it.", "gauge", nil}
	ussDesc        = desc{"clusterrun_runner_uss_bytes", "Unique set size (USS, from smaps_rollup) of clusterrun itself, the runner and its guard process together, in bytes: the pages no other process maps.", "gauge", nil}
	goroutinesDesc = desc{"clusterrun_runner_goroutines", "Goroutines in the runner process, to spot leaks.", "gauge", nil}
	fdsDesc        = desc{"clusterrun_runner_fds", "Open file descriptors of the runner process, to spot leaks.", "gauge", nil}
	desiredDesc    = desc{"clusterrun_app_desired_instances", "Instances each app is configured (or scaled) to run.", "gauge", []string{"app"}}
	instancesDesc  = desc{"clusterrun_instances", "Instance processes (and instance numbers without one) by app and state; during a rolling reload an instance number may have two processes.", "gauge", []string{"app", "state"}}
	restartsDesc   = desc{"clusterrun_restarts_total", "Instance restarts by app and reason (crash, stopping, health, watchdog, memory, manual).", "counter", []string{"app", "reason"}}
	reloadsDesc    = desc{"clusterrun_reloads_total", "Rolling reloads by outcome (completed, aborted, rejected, superseded, cancelled); a reload of several apps counts once per app.", "counter", []string{"outcome"}}
	procPSSDesc    = desc{"clusterrun_instance_pss_bytes", "Proportional set size (PSS, from smaps_rollup) summed over an instance's process group, in bytes: pages shared with other processes count their share only.", "gauge", []string{"app", "instance", "pid"}}
	procUSSDesc    = desc{"clusterrun_instance_uss_bytes", "Unique set size (USS, from smaps_rollup) summed over an instance's process group, in bytes: the pages only its processes map.", "gauge", []string{"app", "instance", "pid"}}
	procCPUDesc    = desc{"clusterrun_instance_cpu_ratio", "CPU use of an instance's process group over the last sample, in cores (1 = one core busy).", "gauge", []string{"app", "instance", "pid"}}
	procConnsDesc  = desc{"clusterrun_instance_connections", "Proxied connections open to an instance (proxy mode only), summed over its processes during a rolling reload.", "gauge", []string{"app", "instance"}}
	httpReqDesc    = desc{"clusterrun_http_requests_total", "Requests answered through an http listener, by app, instance number, listener and status class (1xx … 5xx, the runner's own 502, 503 and 504 included), summed over the instance number's processes since the runner started.", "counter", []string{"app", "code", "instance", "listener"}}
	httpDurDesc    = desc{"clusterrun_http_request_duration_seconds", "Time from a request's head to the end of its answer through an http listener, by app and listener.", "histogram", []string{"app", "listener"}}
)

// collector turns one status snapshot per scrape into metrics.
type collector struct {
	src     Source
	timeout time.Duration
}

func newCollector(src Source, timeout time.Duration) *collector {
	return &collector{src: src, timeout: timeout}
}

// collect reads a snapshot and returns its families: only clusterrun_up
// (0) when the runner does not answer in time.
func (c *collector) collect() []*family {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.src.Snapshot(ctx)
	up := &family{desc: upDesc}
	if err != nil {
		up.add(0)
		return []*family{up}
	}
	fam := func(d desc) *family { return &family{desc: d} }
	started, pss, uss, goroutines, fds := fam(startedDesc), fam(pssDesc), fam(ussDesc), fam(goroutinesDesc), fam(fdsDesc)
	desired, instances, restartsF, reloadsF := fam(desiredDesc), fam(instancesDesc), fam(restartsDesc), fam(reloadsDesc)
	procPSS, procUSS, procCPU, procConns := fam(procPSSDesc), fam(procUSSDesc), fam(procCPUDesc), fam(procConnsDesc)
	httpReq, httpDur := fam(httpReqDesc), fam(httpDurDesc)

	up.add(1)
	if !st.Started.IsZero() {
		started.add(float64(st.Started.UnixNano()) / 1e9)
	}
	if st.PSSBytes >= 0 {
		pss.add(float64(st.PSSBytes))
		uss.add(float64(st.USSBytes))
	}
	goroutines.add(float64(st.Goroutines))
	fds.add(float64(st.FDs))

	for _, a := range st.Apps {
		desired.add(float64(a.Instances), a.Name)
		byState := map[string]int{}
		for _, s := range instanceStates {
			byState[s] = 0
		}
		// Two processes of one instance number (one replacing the other)
		// would be two series with the same labels: sum them.
		conns := map[int]int{}
		for _, p := range a.Procs {
			byState[p.State]++
			if p.PID == 0 {
				continue // no process: nothing to measure
			}
			inst, pid := strconv.Itoa(p.Instance), strconv.Itoa(p.PID)
			if p.PSSBytes >= 0 {
				procPSS.add(float64(p.PSSBytes), a.Name, inst, pid)
				procUSS.add(float64(p.USSBytes), a.Name, inst, pid)
			}
			if p.CPUPercent >= 0 {
				procCPU.add(p.CPUPercent/100, a.Name, inst, pid)
			}
			if p.Addr != "" { // proxy mode: it has a private address
				conns[p.Instance] += p.Conns
			}
		}
		for s, n := range byState {
			instances.add(float64(n), a.Name, s)
		}
		for i, n := range conns {
			procConns.add(float64(n), a.Name, strconv.Itoa(i))
		}
		addHTTP(httpReq, httpDur, a)
	}

	// Restarts of every app the runner knows, and of apps gone since (the
	// counters keep them: a counter must not go back).
	restarts := map[string]map[string]int{}
	for _, a := range st.Apps {
		restarts[a.Name] = map[string]int{}
	}
	for app, byReason := range st.Counters.Restarts {
		if restarts[app] == nil {
			restarts[app] = map[string]int{}
		}
		for r, n := range byReason {
			restarts[app][r] = n
		}
	}
	for app, byReason := range restarts {
		for _, r := range restartReasons {
			if _, ok := byReason[r]; !ok {
				byReason[r] = 0
			}
		}
		for r, n := range byReason {
			restartsF.add(float64(n), app, r)
		}
	}

	reloads := map[string]int{}
	for _, o := range reloadOutcomes {
		reloads[o] = 0
	}
	for o, n := range st.Counters.Reloads {
		reloads[o] = n
	}
	for o, n := range reloads {
		reloadsF.add(float64(n), o)
	}
	return []*family{up, started, pss, uss, goroutines, fds, desired, instances, restartsF, reloadsF, procPSS, procUSS, procCPU, procConns, httpReq, httpDur}
}

// httpClasses label the status classes of status.HTTPCounts.ByClass.
var httpClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// addHTTP exports an app's requests through http listeners: every class of
// every instance number, zero included, and one histogram per listener
// summed over its instance numbers.
func addHTTP(req, dur *family, a status.App) {
	byListener := map[string]*histogram{}
	var order []string
	for _, h := range a.HTTP {
		inst := strconv.Itoa(h.Instance)
		for i, n := range h.ByClass {
			req.add(float64(n), a.Name, httpClasses[i], inst, h.Listener)
		}
		lh := byListener[h.Listener]
		if lh == nil {
			lh = newHistogram(status.HTTPBuckets)
			byListener[h.Listener] = lh
			order = append(order, h.Listener)
		}
		for i, n := range h.Buckets {
			if i < len(lh.counts) {
				lh.counts[i] += n
			}
		}
		lh.sum += h.Sum
	}
	for _, l := range order {
		dur.metrics = append(dur.metrics, metric{values: []string{a.Name, l}, hist: byListener[l]})
	}
}
