package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/httpserve/httpservetest"
	"github.com/clusterrun/clusterrun/status"
)

// fakeSource returns the snapshot it was last given, or err; with block
// set it waits for the scrape's deadline, like a runner that is stuck.
type fakeSource struct {
	mu    sync.Mutex
	st    status.Runner
	err   error
	block bool
}

func (f *fakeSource) Snapshot(ctx context.Context) (status.Runner, error) {
	f.mu.Lock()
	st, err, block := f.st, f.err, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return status.Runner{}, ctx.Err()
	}
	return st, err
}

func (f *fakeSource) set(st status.Runner, err error) {
	f.mu.Lock()
	f.st, f.err = st, err
	f.mu.Unlock()
}

// snapshot is a runner with two apps: web in proxy mode with instance 0
// being replaced (two processes) and instance 1 backing off, and worker
// with one plain process. Counters grow with n.
func snapshot(n int) status.Runner {
	return status.Runner{
		PID: 1, Started: time.Unix(1700000000, 0), Phase: "running",
		Goroutines: 42, PSSBytes: 30 << 20, USSBytes: 20 << 20, FDs: 17,
		Apps: []status.App{
			{Name: "web", State: "reloading", Instances: 2, Procs: []status.Instance{
				{App: "web", Instance: 0, PID: 101, State: "ready", Role: "draining", Addr: "127.0.0.1:5001", Conns: 3, CPUPercent: 50, PSSBytes: 1000, USSBytes: 600},
				{App: "web", Instance: 0, PID: 103, State: "starting", Role: "replacement", Addr: "127.0.0.1:5003", Conns: 1, CPUPercent: -1, PSSBytes: -1, USSBytes: -1},
				{App: "web", Instance: 1, State: "backoff", CPUPercent: -1, PSSBytes: -1, USSBytes: -1},
			}},
			{Name: "worker", State: "ready", Instances: 1, Procs: []status.Instance{
				{App: "worker", Instance: 0, PID: 201, State: "ready", Role: "serving", CPUPercent: 12.5, PSSBytes: 2000, USSBytes: 1500},
			}},
		},
		Counters: status.Counters{
			Restarts: map[string]map[string]int{
				"web": {status.RestartCrash: 2 * n, status.RestartHealth: n},
				"old": {status.RestartManual: n}, // an app removed since
			},
			Reloads: map[string]int{status.ReloadCompleted: 3 * n, status.ReloadAborted: n},
		},
	}
}

func scrape(t *testing.T, h httpserve.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	httpservetest.Handler(h).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape: cannot parse: %v", err)
	}
	return fams
}

// value finds the one sample of name whose labels are exactly labels
// ("k=v" pairs).
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	want := strings.Join(labels, ",")
	for _, m := range f.GetMetric() {
		if labelString(m) != want {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func labelString(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func TestScrape(t *testing.T) {
	src := &fakeSource{}
	src.set(snapshot(1), nil)
	m := New(src)
	m.Observe(status.Lifecycle{Kind: status.Ready, ID: 1, App: "web", ReadyAfter: 1500 * time.Millisecond})
	m.Observe(status.Lifecycle{Kind: status.Routable, ID: 1, App: "web", ReadyAfter: 1500 * time.Millisecond})
	m.Observe(status.Lifecycle{Kind: status.Crashed, ID: 2, App: "worker"})
	fams := scrape(t, m.Handler())

	families := map[string]dto.MetricType{
		"clusterrun_up":                        dto.MetricType_GAUGE,
		"clusterrun_runner_start_time_seconds": dto.MetricType_GAUGE,
		"clusterrun_runner_pss_bytes":          dto.MetricType_GAUGE,
		"clusterrun_runner_uss_bytes":          dto.MetricType_GAUGE,
		"clusterrun_runner_goroutines":         dto.MetricType_GAUGE,
		"clusterrun_runner_fds":                dto.MetricType_GAUGE,
		"clusterrun_app_desired_instances":     dto.MetricType_GAUGE,
		"clusterrun_instances":                 dto.MetricType_GAUGE,
		"clusterrun_restarts_total":            dto.MetricType_COUNTER,
		"clusterrun_reloads_total":             dto.MetricType_COUNTER,
		"clusterrun_instance_pss_bytes":        dto.MetricType_GAUGE,
		"clusterrun_instance_uss_bytes":        dto.MetricType_GAUGE,
		"clusterrun_instance_cpu_ratio":        dto.MetricType_GAUGE,
		"clusterrun_instance_connections":      dto.MetricType_GAUGE,
		"clusterrun_time_to_ready_seconds":     dto.MetricType_HISTOGRAM,
		"clusterrun_crashes_total":             dto.MetricType_COUNTER,
	}
	for name, typ := range families {
		f := fams[name]
		if f == nil {
			t.Errorf("family %s missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
	}
	for name := range fams {
		if _, ok := families[name]; !ok {
			t.Errorf("unexpected family %s", name)
		}
	}

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"clusterrun_up", nil, 1},
		{"clusterrun_runner_start_time_seconds", nil, 1700000000},
		{"clusterrun_runner_pss_bytes", nil, 30 << 20},
		{"clusterrun_runner_uss_bytes", nil, 20 << 20},
		{"clusterrun_runner_goroutines", nil, 42},
		{"clusterrun_runner_fds", nil, 17},
		{"clusterrun_app_desired_instances", []string{"app=web"}, 2},
		{"clusterrun_instances", []string{"app=web", "state=ready"}, 1},
		{"clusterrun_instances", []string{"app=web", "state=starting"}, 1},
		{"clusterrun_instances", []string{"app=web", "state=backoff"}, 1},
		{"clusterrun_instances", []string{"app=web", "state=killing"}, 0},
		{"clusterrun_instances", []string{"app=worker", "state=ready"}, 1},
		{"clusterrun_restarts_total", []string{"app=web", "reason=crash"}, 2},
		{"clusterrun_restarts_total", []string{"app=web", "reason=health"}, 1},
		{"clusterrun_restarts_total", []string{"app=web", "reason=memory"}, 0},
		{"clusterrun_restarts_total", []string{"app=worker", "reason=crash"}, 0},
		{"clusterrun_restarts_total", []string{"app=old", "reason=manual"}, 1},
		{"clusterrun_reloads_total", []string{"outcome=completed"}, 3},
		{"clusterrun_reloads_total", []string{"outcome=aborted"}, 1},
		{"clusterrun_reloads_total", []string{"outcome=cancelled"}, 0},
		{"clusterrun_instance_pss_bytes", []string{"app=web", "instance=0", "pid=101"}, 1000},
		{"clusterrun_instance_uss_bytes", []string{"app=web", "instance=0", "pid=101"}, 600},
		{"clusterrun_instance_pss_bytes", []string{"app=worker", "instance=0", "pid=201"}, 2000},
		{"clusterrun_instance_uss_bytes", []string{"app=worker", "instance=0", "pid=201"}, 1500},
		{"clusterrun_instance_cpu_ratio", []string{"app=web", "instance=0", "pid=101"}, 0.5},
		{"clusterrun_instance_cpu_ratio", []string{"app=worker", "instance=0", "pid=201"}, 0.125},
		{"clusterrun_instance_connections", []string{"app=web", "instance=0"}, 4},
		{"clusterrun_time_to_ready_seconds", []string{"app=web"}, 1},
		{"clusterrun_crashes_total", []string{"app=worker"}, 1},
	} {
		got, ok := value(fams, tc.name, tc.labels...)
		if !ok || got != tc.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", tc.name, strings.Join(tc.labels, ","), got, ok, tc.want)
		}
	}

	// Unknown usage (-1) and instance numbers without a process export
	// nothing; only proxy-mode instances have connections.
	for _, tc := range []struct {
		name   string
		labels []string
	}{
		{"clusterrun_instance_pss_bytes", []string{"app=web", "instance=0", "pid=103"}},
		{"clusterrun_instance_uss_bytes", []string{"app=web", "instance=0", "pid=103"}},
		{"clusterrun_instance_cpu_ratio", []string{"app=web", "instance=0", "pid=103"}},
		{"clusterrun_instance_pss_bytes", []string{"app=web", "instance=1", "pid=0"}},
		{"clusterrun_instance_connections", []string{"app=worker", "instance=0"}},
		{"clusterrun_instance_connections", []string{"app=web", "instance=1"}},
	} {
		if v, ok := value(fams, tc.name, tc.labels...); ok {
			t.Errorf("%s{%s} = %v, want no sample", tc.name, strings.Join(tc.labels, ","), v)
		}
	}
	if n := len(fams["clusterrun_instances"].GetMetric()); n != 2*len(instanceStates) {
		t.Errorf("clusterrun_instances has %d series, want %d (every state of both apps)", n, 2*len(instanceStates))
	}
}

func TestScrapeText(t *testing.T) {
	src := &fakeSource{}
	src.set(snapshot(1), nil)
	srv := httptest.NewServer(httpservetest.Handler(New(src).Handler()))
	defer srv.Close()
	want := `
# HELP clusterrun_reloads_total Rolling reloads by outcome (completed, aborted, rejected, superseded, cancelled); a reload of several apps counts once per app.
# TYPE clusterrun_reloads_total counter
clusterrun_reloads_total{outcome="aborted"} 1
clusterrun_reloads_total{outcome="cancelled"} 0
clusterrun_reloads_total{outcome="completed"} 3
clusterrun_reloads_total{outcome="rejected"} 0
clusterrun_reloads_total{outcome="superseded"} 0
# HELP clusterrun_instance_cpu_ratio CPU use of an instance's process group over the last sample, in cores (1 = one core busy).
# TYPE clusterrun_instance_cpu_ratio gauge
clusterrun_instance_cpu_ratio{app="web",instance="0",pid="101"} 0.5
clusterrun_instance_cpu_ratio{app="worker",instance="0",pid="201"} 0.125
`
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want),
		"clusterrun_reloads_total", "clusterrun_instance_cpu_ratio"); err != nil {
		t.Fatal(err)
	}
}

func TestCountersMonotonic(t *testing.T) {
	src := &fakeSource{}
	src.set(snapshot(1), nil)
	m := New(src)
	m.Observe(status.Lifecycle{Kind: status.Crashed, ID: 1, App: "web"})
	before := scrape(t, m.Handler())
	src.set(snapshot(2), nil)
	m.Observe(status.Lifecycle{Kind: status.Crashed, ID: 2, App: "web"})
	after := scrape(t, m.Handler())

	grew := 0
	for name, f := range before {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, mb := range f.GetMetric() {
			labels := strings.Split(labelString(mb), ",")
			v, ok := value(after, name, labels...)
			if !ok {
				t.Errorf("%s{%s} vanished", name, labelString(mb))
				continue
			}
			if v < mb.Counter.GetValue() {
				t.Errorf("%s{%s} went down: %v then %v", name, labelString(mb), mb.Counter.GetValue(), v)
			}
			if v > mb.Counter.GetValue() {
				grew++
			}
		}
	}
	// web crash and health, old manual, completed, aborted, crashes_total.
	if grew != 6 {
		t.Errorf("%d counters grew, want 6", grew)
	}
}

func TestObserveConcurrent(t *testing.T) {
	src := &fakeSource{}
	src.set(snapshot(1), nil)
	m := New(src)
	const goroutines, perG = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				id := status.InstanceID(g*perG + i + 1)
				app := fmt.Sprintf("app%d", i%3)
				m.Observe(status.Lifecycle{Kind: status.Started, ID: id, App: app})
				m.Observe(status.Lifecycle{Kind: status.Ready, ID: id, App: app, ReadyAfter: time.Duration(i+1) * time.Millisecond})
				m.Observe(status.Lifecycle{Kind: status.Routable, ID: id, App: app, ReadyAfter: time.Duration(i+1) * time.Millisecond})
				// Routable again (after a failed health check): not a
				// second time to ready.
				m.Observe(status.Lifecycle{Kind: status.Unroutable, ID: id, App: app})
				m.Observe(status.Lifecycle{Kind: status.Routable, ID: id, App: app, ReadyAfter: time.Duration(i+1) * time.Millisecond})
				m.Observe(status.Lifecycle{Kind: status.Crashed, ID: id, App: app})
				m.Observe(status.Lifecycle{Kind: status.Gone, ID: id, App: app})
			}
		}()
	}
	// Scrapes at the same time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			rec := httptest.NewRecorder()
			httpservetest.Handler(m.Handler()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		}
	}()
	wg.Wait()

	fams := scrape(t, m.Handler())
	var ready, crashes float64
	for i := range 3 {
		app := fmt.Sprintf("app=app%d", i)
		v, _ := value(fams, "clusterrun_time_to_ready_seconds", app)
		ready += v
		v, _ = value(fams, "clusterrun_crashes_total", app)
		crashes += v
	}
	if ready != goroutines*perG || crashes != goroutines*perG {
		t.Errorf("ready observations %v, crashes %v, want %d each", ready, crashes, goroutines*perG)
	}
}

func TestSnapshotError(t *testing.T) {
	src := &fakeSource{}
	src.set(status.Runner{}, errors.New("runner stopped"))
	m := New(src)
	m.Observe(status.Lifecycle{Kind: status.Crashed, ID: 1, App: "web"})
	fams := scrape(t, m.Handler())
	if v, ok := value(fams, "clusterrun_up"); !ok || v != 0 {
		t.Errorf("clusterrun_up = %v (present %v), want 0", v, ok)
	}
	if fams["clusterrun_instances"] != nil {
		t.Error("instances exported without a snapshot")
	}
	// What Observe counted is still served.
	if v, _ := value(fams, "clusterrun_crashes_total", "app=web"); v != 1 {
		t.Errorf("clusterrun_crashes_total = %v, want 1", v)
	}
}

func TestSnapshotTimeout(t *testing.T) {
	src := &fakeSource{block: true}
	m := New(src)
	m.col.timeout = 20 * time.Millisecond
	rec := httptest.NewRecorder()
	httpservetest.Handler(m.Handler()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := "# HELP clusterrun_up Whether the runner answered the scrape's status request (1) or not (0: stopping, or busy past the scrape timeout).\n" +
		"# TYPE clusterrun_up gauge\nclusterrun_up 0\n"
	if rec.Body.String() != want {
		t.Fatalf("scrape of a runner that does not answer:\n%s\nwant:\n%s", rec.Body, want)
	}
}

func TestServe(t *testing.T) {
	src := &fakeSource{}
	src.set(snapshot(1), nil)
	m := New(src)
	stop, bound, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(bound, ":0") {
		t.Fatalf("bound %q: port not resolved", bound)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://" + bound + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if code, body, err := get("/metrics"); err != nil || code != 200 || !strings.Contains(body, "\nclusterrun_up 1\n") {
		t.Fatalf("/metrics: %d %v\n%s", code, err, body)
	}
	if code, body, err := get("/"); err != nil || code != 200 || !strings.Contains(body, "/metrics") {
		t.Fatalf("/: %d %v %q", code, err, body)
	}
	if code, _, err := get("/other"); err != nil || code != 404 {
		t.Fatalf("/other: %d %v, want 404", code, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get("/metrics"); err == nil {
		t.Fatal("still serving after stop")
	}
	if err := stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	m := New(&fakeSource{})
	if _, _, err := m.Serve(""); err == nil {
		t.Error("Serve(\"\"): no error")
	}
	if _, _, err := m.Serve("127.0.0.1:notaport"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
		t.Errorf("bad address: %v", err)
	}
	// The port is taken.
	stop, bound, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	if _, _, err := m.Serve(bound); err == nil || !strings.Contains(err.Error(), bound) {
		t.Errorf("taken address: %v", err)
	}
}

// An app behind an http listener exports its requests by instance number
// and status class, and a latency histogram per listener summed over its
// instance numbers.
func TestScrapeHTTP(t *testing.T) {
	st := snapshot(1)
	st.Apps[0].HTTP = []status.HTTPCounts{
		{Listener: "web", Instance: 0, ByClass: [5]uint64{0, 90, 0, 3, 1}, Buckets: []uint64{50, 30, 10, 4, 0, 0, 0, 0, 0, 0, 0, 0}, Sum: 0.5},
		{Listener: "web", Instance: 1, ByClass: [5]uint64{0, 10, 0, 0, 0}, Buckets: []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1}, Sum: 95},
	}
	src := &fakeSource{}
	src.set(st, nil)
	srv := httptest.NewServer(httpservetest.Handler(New(src).Handler()))
	defer srv.Close()
	want := `
# HELP clusterrun_http_requests_total Requests answered through an http listener, by app, instance number, listener and status class (1xx … 5xx, the runner's own 502, 503 and 504 included), summed over the instance number's processes since the runner started.
# TYPE clusterrun_http_requests_total counter
clusterrun_http_requests_total{app="web",code="1xx",instance="0",listener="web"} 0
clusterrun_http_requests_total{app="web",code="2xx",instance="0",listener="web"} 90
clusterrun_http_requests_total{app="web",code="3xx",instance="0",listener="web"} 0
clusterrun_http_requests_total{app="web",code="4xx",instance="0",listener="web"} 3
clusterrun_http_requests_total{app="web",code="5xx",instance="0",listener="web"} 1
clusterrun_http_requests_total{app="web",code="1xx",instance="1",listener="web"} 0
clusterrun_http_requests_total{app="web",code="2xx",instance="1",listener="web"} 10
clusterrun_http_requests_total{app="web",code="3xx",instance="1",listener="web"} 0
clusterrun_http_requests_total{app="web",code="4xx",instance="1",listener="web"} 0
clusterrun_http_requests_total{app="web",code="5xx",instance="1",listener="web"} 0
# HELP clusterrun_http_request_duration_seconds Time from a request's head to the end of its answer through an http listener, by app and listener.
# TYPE clusterrun_http_request_duration_seconds histogram
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.005"} 50
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.01"} 80
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.025"} 90
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.05"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.1"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.25"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="0.5"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="1"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="2.5"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="5"} 94
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="10"} 103
clusterrun_http_request_duration_seconds_bucket{app="web",listener="web",le="+Inf"} 104
clusterrun_http_request_duration_seconds_sum{app="web",listener="web"} 95.5
clusterrun_http_request_duration_seconds_count{app="web",listener="web"} 104
`
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want),
		"clusterrun_http_requests_total", "clusterrun_http_request_duration_seconds"); err != nil {
		t.Fatal(err)
	}
}
