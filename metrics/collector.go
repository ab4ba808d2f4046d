package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// collector turns one status snapshot per scrape into metrics.
type collector struct {
	src     Source
	timeout time.Duration

	up, started, pss, uss, goroutines, fds *prometheus.Desc
	desired, instances                     *prometheus.Desc
	restarts, reloads                      *prometheus.Desc
	procPSS, procUSS, procCPU, procConns   *prometheus.Desc
}

func newCollector(src Source, timeout time.Duration) *collector {
	d := prometheus.NewDesc
	return &collector{
		src:     src,
		timeout: timeout,
		up: d("clusterrun_up",
			"Whether the runner answered the scrape's status request (1) or not (0: stopping, or busy past the scrape timeout).", nil, nil),
		started: d("clusterrun_runner_start_time_seconds",
			"When the runner started, in seconds since the Unix epoch.", nil, nil),
		pss: d("clusterrun_runner_pss_bytes",
			"Proportional set size (PSS, from smaps_rollup) of clusterrun itself, the runner and its guard process together, in bytes: each page counted once, split among the processes that map it.", nil, nil),
		uss: d("clusterrun_runner_uss_bytes",
			"Unique set size (USS, from smaps_rollup) of clusterrun itself, the runner and its guard process together, in bytes: the pages no other process maps.", nil, nil),
		goroutines: d("clusterrun_runner_goroutines",
			"Goroutines in the runner process, to spot leaks.", nil, nil),
		fds: d("clusterrun_runner_fds",
			"Open file descriptors of the runner process, to spot leaks.", nil, nil),
		desired: d("clusterrun_app_desired_instances",
			"Instances each app is configured (or scaled) to run.", []string{"app"}, nil),
		instances: d("clusterrun_instances",
			"Instance processes (and instance numbers without one) by app and state; during a rolling reload an instance number may have two processes.",
			[]string{"app", "state"}, nil),
		restarts: d("clusterrun_restarts_total",
			"Instance restarts by app and reason (crash, stopping, health, watchdog, memory, manual).",
			[]string{"app", "reason"}, nil),
		reloads: d("clusterrun_reloads_total",
			"Rolling reloads by outcome (completed, aborted, rejected, superseded, cancelled); a reload of several apps counts once per app.",
			[]string{"outcome"}, nil),
		procPSS: d("clusterrun_instance_pss_bytes",
			"Proportional set size (PSS, from smaps_rollup) summed over an instance's process group, in bytes: pages shared with other processes count their share only.",
			[]string{"app", "instance", "pid"}, nil),
		procUSS: d("clusterrun_instance_uss_bytes",
			"Unique set size (USS, from smaps_rollup) summed over an instance's process group, in bytes: the pages only its processes map.",
			[]string{"app", "instance", "pid"}, nil),
		procCPU: d("clusterrun_instance_cpu_ratio",
			"CPU use of an instance's process group over the last sample, in cores (1 = one core busy).",
			[]string{"app", "instance", "pid"}, nil),
		procConns: d("clusterrun_instance_connections",
			"Proxied connections open to an instance (proxy mode only), summed over its processes during a rolling reload.",
			[]string{"app", "instance"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.up, c.started, c.pss, c.uss, c.goroutines, c.fds, c.desired, c.instances,
		c.restarts, c.reloads, c.procPSS, c.procUSS, c.procCPU, c.procConns,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.src.Snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	gauge(c.up, 1)
	if !st.Started.IsZero() {
		gauge(c.started, float64(st.Started.UnixNano())/1e9)
	}
	if st.PSSBytes >= 0 {
		gauge(c.pss, float64(st.PSSBytes))
		gauge(c.uss, float64(st.USSBytes))
	}
	gauge(c.goroutines, float64(st.Goroutines))
	gauge(c.fds, float64(st.FDs))

	for _, a := range st.Apps {
		gauge(c.desired, float64(a.Instances), a.Name)
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
				gauge(c.procPSS, float64(p.PSSBytes), a.Name, inst, pid)
				gauge(c.procUSS, float64(p.USSBytes), a.Name, inst, pid)
			}
			if p.CPUPercent >= 0 {
				gauge(c.procCPU, p.CPUPercent/100, a.Name, inst, pid)
			}
			if p.Addr != "" { // proxy mode: it has a private address
				conns[p.Instance] += p.Conns
			}
		}
		for s, n := range byState {
			gauge(c.instances, float64(n), a.Name, s)
		}
		for i, n := range conns {
			gauge(c.procConns, float64(n), a.Name, strconv.Itoa(i))
		}
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
			counter(c.restarts, float64(n), app, r)
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
		counter(c.reloads, float64(n), o)
	}
}
