package runner

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/http1"
)

// prober is the real Prober: tcp and http checks of instances' private
// addresses, each on its own goroutine, reporting through events.
type prober struct {
	post func(Event)

	mu      sync.Mutex
	cancels map[InstanceID]context.CancelFunc
	wg      sync.WaitGroup
}

func newProber(post func(Event)) *prober {
	return &prober{post: post, cancels: map[InstanceID]context.CancelFunc{}}
}

// readyPoll is how often a ready check knocks until it passes.
const readyPoll = 50 * time.Millisecond

func (p *prober) Ready(id InstanceID, addr string, check hclconfig.ReadyCheck, path string) {
	ctx := p.begin(id)
	p.wg.Go(func() {
		tick := time.NewTicker(readyPoll)
		defer tick.Stop()
		for {
			if checkOnce(ctx, addr, string(check), path, time.Second) == nil {
				p.deliver(ctx, ProbeResult{ID: id, OK: true})
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

func (p *prober) Health(id InstanceID, addr string, h hclconfig.Health) {
	ctx := p.begin(id)
	p.wg.Go(func() {
		tick := time.NewTicker(h.Interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := checkOnce(ctx, addr, string(h.Check), h.Path, h.Timeout)
			res := ProbeResult{ID: id, Health: true, OK: err == nil}
			if err != nil {
				res.Detail = err.Error()
			}
			p.deliver(ctx, res)
		}
	})
}

func (p *prober) Stop(id InstanceID) {
	p.mu.Lock()
	cancel := p.cancels[id]
	delete(p.cancels, id)
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// close stops every check and waits for their goroutines.
func (p *prober) close() {
	p.mu.Lock()
	for id, cancel := range p.cancels {
		cancel()
		delete(p.cancels, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *prober) begin(id InstanceID) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	if old := p.cancels[id]; old != nil {
		old()
	}
	p.cancels[id] = cancel
	p.mu.Unlock()
	return ctx
}

// deliver posts a result unless the check was stopped meanwhile.
func (p *prober) deliver(ctx context.Context, res ProbeResult) {
	if ctx.Err() == nil {
		p.post(res)
	}
}

// ProbeUserAgent is the User-Agent of every http ready and health check,
// so that an app can leave the runner's probes out of its access log.
const ProbeUserAgent = "clusterrun-probe"

// checkOnce connects to addr (tcp), or GETs path on it (http) and wants a
// status below 400, as Kubernetes probes do.
func checkOnce(ctx context.Context, addr, kind, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if kind == "tcp" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	// The path as net/http would send it: escaped where it must be,
	// without a fragment.
	u, err := url.Parse("http://" + addr + path)
	if err != nil {
		return fmt.Errorf("cannot check http://%s%s: %w", addr, path, err)
	}
	req := &http1.Request{Method: "GET", Target: u.RequestURI(), Host: addr,
		Header: http1.Header{"User-Agent": {ProbeUserAgent}}}
	// A connection a check, closed with its answer: only the status
	// matters, and a redirect is an answer (the instance is up).
	resp, err := http1.Do(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}, req)
	if err != nil {
		// Do's errors do not name the request: this says it, once.
		return fmt.Errorf("GET http://%s%s: %w", addr, req.Target, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
