// Package metrics serves clusterrun's Prometheus metrics (the metrics
// block), in the Prometheus text format (text.go writes it).
//
// Most metrics are read from one status snapshot per scrape, so there is
// no second copy of the runner's state to keep in step: the runner stays
// the one owner of its counters and its instances. Only what a snapshot
// cannot tell comes from lifecycle events: the time each instance took to
// become ready (a histogram) and crashes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/http1"
	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/status"
)

// Source gives the runner's status; *runner.Runner implements it.
type Source interface {
	Snapshot(ctx context.Context) (status.Runner, error)
}

// ScrapeTimeout bounds the wait for a snapshot during a scrape. A runner
// that does not answer by then (stopping, or stuck) is reported as
// clusterrun_up 0 instead of holding the scrape until Prometheus gives up.
const ScrapeTimeout = 2 * time.Second

// maxScrapes bounds concurrent scrapes: each one is a request to the
// runner's event loop, which must not queue up behind a crowd of them.
const maxScrapes = 4

// readyBuckets spans a process that is ready at once to one that warms a
// cache for minutes, in seconds.
var readyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

var (
	readyDesc   = desc{"clusterrun_time_to_ready_seconds", "Time from the start of an instance's process until it was ready, by app.", "histogram", []string{"app"}}
	crashesDesc = desc{"clusterrun_crashes_total", "Instances that exited when nobody asked them to, by app, whether or not they were restarted.", "counter", []string{"app"}}
)

// Metrics holds the metrics of one runner.
type Metrics struct {
	src     Source
	col     *collector
	logf    func(format string, args ...any)
	handler httpserve.Handler
	// scrapes holds a token per scrape in progress.
	scrapes chan struct{}

	// mu guards what Observe counts: the runner's goroutine writes it, a
	// scrape reads it. Neither holds it for more than a few map updates.
	mu      sync.Mutex
	ready   map[string]*histogram // by app
	crashes map[string]float64    // by app
}

// New makes the metrics of the runner that src describes.
func New(src Source) *Metrics {
	m := &Metrics{
		src:     src,
		col:     newCollector(src, ScrapeTimeout),
		scrapes: make(chan struct{}, maxScrapes),
		ready:   map[string]*histogram{},
		crashes: map[string]float64{},
	}
	m.handler = httpserve.HandlerFunc(m.serveMetrics)
	return m
}

// Observe records a lifecycle event. The runner calls it for every event
// on its own goroutine; it never waits on anything but a short lock.
func (m *Metrics) Observe(ev status.Lifecycle) {
	switch ev.Kind {
	case status.Ready:
		// Once per instance: a health check that fails and recovers makes
		// it Routable again, never Ready again.
		if ev.ReadyAfter > 0 {
			m.mu.Lock()
			h := m.ready[ev.App]
			if h == nil {
				h = newHistogram(readyBuckets)
				m.ready[ev.App] = h
			}
			h.observe(ev.ReadyAfter.Seconds())
			m.mu.Unlock()
		}
	case status.Crashed:
		m.mu.Lock()
		m.crashes[ev.App]++
		m.mu.Unlock()
	default:
		// The snapshot shows the rest.
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() httpserve.Handler { return m.handler }

// serveMetrics answers a scrape, or 503 when maxScrapes are in progress.
func (m *Metrics) serveMetrics(w httpserve.ResponseWriter, r *httpserve.Request) {
	select {
	case m.scrapes <- struct{}{}:
		defer func() { <-m.scrapes }()
	default:
		httpserve.WriteText(w, http1.StatusServiceUnavailable, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxScrapes))
		return
	}
	fams := m.col.collect()
	ready, crashes := &family{desc: readyDesc}, &family{desc: crashesDesc}
	m.mu.Lock()
	for app, h := range m.ready {
		ready.metrics = append(ready.metrics, metric{values: []string{app}, hist: h.clone()})
	}
	for app, n := range m.crashes {
		crashes.add(n, app)
	}
	m.mu.Unlock()
	w.Header().Set("Content-Type", contentType)
	w.Write(appendText(nil, append(fams, ready, crashes)))
}

// MaxConns caps the metrics server's open connections. Past it a
// connection is answered 503 at once; an idle one is closed after
// httpserve's idle and header timeouts.
const MaxConns = 64

// SetLogf sets where the metrics server reports its trouble (accept
// errors, refused connections). Call it before Serve.
func (m *Metrics) SetLogf(logf func(format string, args ...any)) { m.logf = logf }

// Serve listens on addr (TCP "host:port"; port 0 picks one) and serves
// /metrics there, and at / a line that points to it. It returns the
// address it bound and stop, which shuts the server down, waiting for
// scrapes in progress until ctx ends; then it drops them.
func (m *Metrics) Serve(addr string) (stop func(ctx context.Context) error, bound string, err error) {
	if addr == "" {
		// net.Listen would take "" as every interface: bind only where
		// the metrics block says.
		return nil, "", errors.New("cannot serve metrics: no address")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("cannot serve metrics on %s: %w", addr, err)
	}
	bound = ln.Addr().String()
	mux := &httpserve.Mux{}
	mux.Handle("GET /metrics", m.handler)
	mux.HandleFunc("GET /{$}", func(w httpserve.ResponseWriter, _ *httpserve.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "clusterrun: Prometheus metrics are at /metrics")
	})
	if p, ok := m.src.(Peeker); ok {
		mux.Handle("GET /healthz", Healthz(p))
		mux.Handle("GET /readyz", Readyz(p))
	}
	// Scrapers and probes are few: a cap well under the runner's fds, so
	// that idle keep-alive connections can never starve instance starts.
	o := httpserve.Options{Name: "metrics", MaxConns: MaxConns, Logf: m.logf}
	srv := httpserve.NewServer(mux, o)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(httpserve.Listener(ln, o)) }()

	var once sync.Once
	var stopErr error
	stop = func(ctx context.Context) error {
		once.Do(func() {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close() // ctx ended first: drop the scrapes left
				stopErr = fmt.Errorf("cannot stop the metrics server on %s: %w", bound, err)
			}
			if err := <-served; !errors.Is(err, httpserve.ErrServerClosed) && stopErr == nil {
				stopErr = fmt.Errorf("metrics server on %s: %w", bound, err)
			}
		})
		return stopErr
	}
	return stop, bound, nil
}
