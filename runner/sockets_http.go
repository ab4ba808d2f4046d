package runner

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/httpmode"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/route"
	"github.com/clusterrun/clusterrun/status"
)

// The http-mode side of the Sockets seam: one httpmode.Server per http
// listener, whose instances follow the same Routable and Unroutable events
// as the proxies' (sockets.go), and which is told when an instance gets
// its stop signal and when it is gone, for the clients stuck to it.

// served is one http listener's server and the instances it may forward to.
type served struct {
	name     string
	srv      *httpmode.Server
	backends map[InstanceID]route.Backend
	done     chan struct{}
}

// accessSources maps instance ids to the log source of their access lines;
// the access log's goroutine reads it, the runner's goroutine writes it.
type accessSources struct {
	mu sync.Mutex
	m  map[InstanceID]logmux.Source
}

func (a *accessSources) get(id InstanceID) (logmux.Source, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	src, ok := a.m[id]
	return src, ok
}

// bindHTTP starts a server for each http listener of defs that has none.
func (s *sockets) bindHTTP(defs []*hclconfig.Listener) {
	for _, d := range defs {
		if d.Mode != hclconfig.HTTP {
			continue
		}
		ln := s.r.lset.Public(d)
		if ln == nil || s.https[ln] != nil {
			continue
		}
		name := d.Name
		h := d.HTTP
		o := httpmode.Options{
			Balance:        balanceOf(d.Balance),
			StickyCookie:   h.StickyCookie,
			MaxConnections: d.MaxConnections,
			MaxPerInstance: d.MaxPerInstance,
			QueueTimeout:   d.QueueTimeout,
			MaxHeaderSize:  h.MaxHeaderSize,
			HeaderTimeout:  h.HeaderTimeout,
			IdleTimeout:    h.IdleTimeout,
			Timeout:        h.Timeout,
			MaxRetryBody:   h.MaxRetryBody,
			FDs:            s.fds,
			Logf: func(f string, args ...any) {
				s.r.log.Printf("listener %q: "+f, append([]any{name}, args...)...)
			},
		}
		if o.MaxRetryBody == 0 {
			o.MaxRetryBody = -1 // written 0: keep none
		}
		for _, p := range h.TrustedProxies {
			if pf, err := netip.ParsePrefix(p); err == nil {
				o.TrustedProxies = append(o.TrustedProxies, pf)
			}
		}
		if h.AccessLog {
			o.AccessLog = func(app string, slot int, id uint64, lines []byte) {
				if src, ok := s.access.get(InstanceID(id)); ok && id != 0 {
					s.r.log.Lines(src, lines)
					return
				}
				// The runner's own answers: no instance took them.
				s.r.log.Lines(logmux.Source{App: "clusterrun", Instance: -1, Stream: logmux.Runner}, append([]byte("listener "+name+": "), lines...))
			}
		}
		sv := &served{name: name, srv: httpmode.New(ln, o), backends: map[InstanceID]route.Backend{}, done: make(chan struct{})}
		s.https[ln] = sv
		go func() {
			defer close(sv.done)
			if err := sv.srv.Serve(); err != nil {
				s.r.log.Printf("listener %q: %v; no connection is accepted on it", name, err)
			}
		}()
	}
}

// balanceOf maps a listener's balance to the routing table's, for both
// modes (proxy.Balance is route.Balance).
func balanceOf(b hclconfig.Balance) route.Balance {
	switch b {
	case hclconfig.BalanceRoundRobin:
		return route.RoundRobin
	case hclconfig.BalanceIPHash:
		return route.IPHash
	}
	return route.LeastLoad
}

// retainHTTP closes the servers of listeners no release uses any more.
func (s *sockets) retainHTTP(keep map[net.Listener]bool) {
	for ln, sv := range s.https {
		if !keep[ln] {
			delete(s.https, ln)
			// Requests under way finish on their own time.
			go sv.srv.Close(context.Background())
		}
	}
}

// routeHTTP follows a lifecycle event for the http listeners.
func (s *sockets) routeHTTP(ev status.Lifecycle) {
	switch ev.Kind {
	case status.Started:
		if ev.PID != 0 && ev.App != "" {
			s.access.mu.Lock()
			s.access.m[ev.ID] = logmux.Source{App: ev.App, Instance: ev.Instance, PID: ev.PID, Stream: logmux.Stdout, Tag: s.r.procs.tagOf(ev.ID)}
			s.access.mu.Unlock()
		}
	case status.Routable:
		for _, d := range s.r.m.listenersOf(ev.ID) {
			if d.Mode != hclconfig.HTTP || ev.Addrs[d.Name] == "" {
				continue
			}
			if sv := s.https[s.r.lset.Public(d)]; sv != nil {
				sv.backends[ev.ID] = route.Backend{ID: uint64(ev.ID), Addr: ev.Addrs[d.Name], App: ev.App, Slot: ev.Instance}
				sv.publish()
			}
		}
	case status.Unroutable, status.Signalled, status.Gone:
		for _, sv := range s.https {
			if _, ok := sv.backends[ev.ID]; ok {
				delete(sv.backends, ev.ID)
				sv.publish()
			}
			switch ev.Kind {
			case status.Signalled:
				sv.srv.Stopping(uint64(ev.ID))
			case status.Gone:
				sv.srv.Forget(uint64(ev.ID))
			}
		}
		if ev.Kind == status.Gone {
			s.access.mu.Lock()
			delete(s.access.m, ev.ID)
			s.access.mu.Unlock()
		}
	}
}

func (sv *served) publish() {
	bs := make([]route.Backend, 0, len(sv.backends))
	for _, b := range sv.backends {
		bs = append(bs, b)
	}
	// A stable order, so round-robin goes round the same way.
	slices.SortFunc(bs, func(a, b route.Backend) int { return cmp.Compare(a.ID, b.ID) })
	sv.srv.SetBackends(bs)
}

// quiesceHTTP returns what Quiesce waits for on the http listeners.
func (s *sockets) quiesceHTTP(id InstanceID, idle time.Duration) []<-chan struct{} {
	var quiet []<-chan struct{}
	for _, sv := range s.https {
		quiet = append(quiet, sv.srv.Quiesce(uint64(id), idle))
	}
	return quiet
}

// addHTTP fills in what the http listeners know: per instance its
// requests in flight and its last minute, per app the counts since start.
func (s *sockets) addHTTP(st *status.Runner) {
	if len(s.https) == 0 {
		return
	}
	per := map[int]*status.Instance{}
	apps := map[string]*status.App{}
	for i := range st.Apps {
		apps[st.Apps[i].Name] = &st.Apps[i]
		for j := range st.Apps[i].Procs {
			if p := &st.Apps[i].Procs[j]; p.PID != 0 {
				per[p.PID] = p
			}
		}
	}
	for _, sv := range s.https {
		inst, slots := sv.srv.Figures()
		for _, f := range inst {
			p := per[s.r.m.pidOf(InstanceID(f.ID))]
			if p == nil {
				continue
			}
			p.Conns += f.InFlight
			p.HTTP = &status.HTTPRecent{PerSec: f.Recent.PerSec, P50: f.Recent.P50, P99: f.Recent.P99}
		}
		for _, f := range slots {
			a := apps[f.App]
			if a == nil {
				continue
			}
			a.HTTP = append(a.HTTP, status.HTTPCounts{Listener: sv.name, Instance: f.Slot, ByClass: f.ByClass, Buckets: f.Buckets[:], Sum: f.Sum})
		}
	}
	for _, a := range apps {
		slices.SortFunc(a.HTTP, func(x, y status.HTTPCounts) int {
			return cmp.Or(strings.Compare(x.Listener, y.Listener), x.Instance-y.Instance)
		})
	}
	for i := range st.Listeners {
		l := &st.Listeners[i]
		for _, sv := range s.https {
			if sv.name == l.Name {
				fs := sv.srv.Stats()
				l.Conns, l.Queued, l.QueueTimeouts = fs.Open, fs.Queued, fs.QueueTimeouts
			}
		}
	}
}

// closeHTTP stops every http server: no new clients; requests under way get
// ctx to finish.
func (s *sockets) closeHTTP(ctx context.Context, wg *sync.WaitGroup) {
	for ln, sv := range s.https {
		delete(s.https, ln)
		wg.Go(func() {
			sv.srv.Close(ctx)
			<-sv.done
		})
	}
}
