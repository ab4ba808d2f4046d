package runner

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proxy"
	"github.com/clusterrun/clusterrun/route"
	"github.com/clusterrun/clusterrun/status"
)

// sockets is the real Sockets seam: the listener set, plus one proxy per
// proxy-mode listener, whose backends follow the supervisor's Routable and
// Unroutable events. It lives on the runner's goroutine; the proxies' data
// path runs on their own goroutines and only reads the snapshot of
// backends that route publishes.
type sockets struct {
	r       *Runner
	proxies map[net.Listener]*routed
	// fds is the descriptor budget every proxy and http listener shares;
	// its reserve follows the number of live instances (live).
	fds  *route.FDBudget
	live map[InstanceID]struct{}
	// https are the servers of http listeners (sockets_http.go); access
	// where their access lines go.
	https  map[net.Listener]*served
	access *accessSources
	// quiescing holds, per instance waiting to be quiesced, what ends the
	// wait early: the instance is gone.
	quiescing map[InstanceID]chan struct{}
}

// routed is one proxy and the instances it may forward to.
type routed struct {
	name     string // the listener's
	px       *proxy.Proxy
	backends map[InstanceID]string
	done     chan struct{}
}

func newSockets(r *Runner) *sockets {
	return &sockets{r: r, proxies: map[net.Listener]*routed{}, quiescing: map[InstanceID]chan struct{}{},
		fds: route.NewFDBudget(fdReserve(0)), live: map[InstanceID]struct{}{},
		https:  map[net.Listener]*served{},
		access: &accessSources{m: map[InstanceID]logmux.Source{}}}
}

func (s *sockets) Bind(defs []*hclconfig.Listener) ([]string, error) {
	warnings, err := s.r.lset.Bind(defs)
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		if d.Mode != hclconfig.Proxy {
			continue
		}
		ln := s.r.lset.Public(d)
		if ln == nil || s.proxies[ln] != nil {
			continue
		}
		name := d.Name
		rt := &routed{px: proxy.New(ln, proxy.Options{
			Balance:        balanceOf(d.Balance),
			WaitForBackend: d.QueueTimeout,
			MaxConnections: d.MaxConnections,
			MaxPerInstance: d.MaxPerInstance,
			FDs:            s.fds,
			Logf: func(f string, args ...any) {
				s.r.log.Printf("listener %q: "+f, append([]any{name}, args...)...)
			},
		}), name: name, backends: map[InstanceID]string{}, done: make(chan struct{})}
		s.proxies[ln] = rt
		go func() {
			defer close(rt.done)
			if err := rt.px.Serve(); err != nil {
				// Nothing is accepted on it: say so, rather than leave
				// clients waiting in its queue without a word.
				s.r.log.Printf("listener %q: %v; no connection is accepted on it", name, err)
			}
		}()
	}
	s.bindHTTP(defs)
	return warnings, nil
}

// stopAccepting makes the proxies of lns stop accepting; their open
// connections go on.
func (s *sockets) stopAccepting(lns []net.Listener) {
	for _, ln := range lns {
		if rt := s.proxies[ln]; rt != nil {
			rt.px.StopAccepting()
		}
		if sv := s.https[ln]; sv != nil {
			sv.srv.StopAccepting()
		}
	}
}

func (s *sockets) Retain(defs []*hclconfig.Listener) {
	keep := map[net.Listener]bool{}
	for _, d := range defs {
		if ln := s.r.lset.Public(d); ln != nil {
			keep[ln] = true
		}
	}
	// Proxies first, so that their accept loops end by Close rather than
	// by finding the socket closed under them.
	for ln, rt := range s.proxies {
		if !keep[ln] {
			delete(s.proxies, ln)
			// Connections under way finish on their own time.
			go rt.px.Close(context.Background())
		}
	}
	s.retainHTTP(keep)
	s.r.lset.Retain(defs)
}

func (s *sockets) ReleaseSlot(app string, defs []*hclconfig.Listener, index int) {
	s.r.lset.ReleaseSlot(app, defs, index)
}

func (s *sockets) Addr(def *hclconfig.Listener) string { return s.r.lset.Addr(def) }

// route follows the supervisor's lifecycle events: an instance that became
// routable is added to the proxies of its proxy listeners, and one that
// stopped being routable is removed before it is sent its stop signal
// (the supervisor publishes Unroutable first).
func (s *sockets) route(ev status.Lifecycle) {
	s.routeHTTP(ev)
	switch ev.Kind {
	case status.Started:
		s.live[ev.ID] = struct{}{}
		s.fds.SetReserve(fdReserve(len(s.live)))
	case status.Routable:
		for _, d := range s.r.m.listenersOf(ev.ID) {
			if d.Mode != hclconfig.Proxy || ev.Addrs[d.Name] == "" {
				continue
			}
			if rt := s.proxies[s.r.lset.Public(d)]; rt != nil {
				rt.backends[ev.ID] = ev.Addrs[d.Name]
				rt.publish()
			}
		}
	case status.Unroutable, status.Gone:
		for _, rt := range s.proxies {
			if _, ok := rt.backends[ev.ID]; ok {
				delete(rt.backends, ev.ID)
				rt.publish()
			}
		}
		if ev.Kind == status.Gone {
			delete(s.live, ev.ID)
			s.fds.SetReserve(fdReserve(len(s.live)))
			if gone := s.quiescing[ev.ID]; gone != nil {
				close(gone)
				delete(s.quiescing, ev.ID)
			}
		}
	}
}

func (rt *routed) publish() {
	bs := make([]proxy.Backend, 0, len(rt.backends))
	for id, addr := range rt.backends {
		bs = append(bs, proxy.Backend{ID: uint64(id), Addr: addr})
	}
	// A stable order, so round-robin goes round the same way.
	slices.SortFunc(bs, func(a, b proxy.Backend) int { return int(a.ID) - int(b.ID) })
	rt.px.SetBackends(bs)
}

// Quiesce posts Quiesced once every connection the proxies forwarded to
// instance id has closed or gone idle for idle after its last byte
// (Proxy.Quiesce), or never if the instance is gone first. It runs on the
// runner's goroutine, which owns the proxies; the wait runs on its own.
func (s *sockets) Quiesce(id InstanceID, idle time.Duration) {
	var quiet []<-chan struct{}
	for _, rt := range s.proxies {
		quiet = append(quiet, rt.px.Quiesce(uint64(id), idle))
	}
	quiet = append(quiet, s.quiesceHTTP(id, idle)...)
	if old := s.quiescing[id]; old != nil {
		close(old)
	}
	gone := make(chan struct{})
	s.quiescing[id] = gone
	done := s.r.done
	go func() {
		for _, q := range quiet {
			select {
			case <-q:
			case <-gone:
				return
			case <-done:
				return
			}
		}
		s.r.post(Quiesced{ID: id})
	}()
}

// fdReserve is what the proxies and http listeners leave of the runner's
// descriptors for the rest of it: the control socket and its clients, the
// metrics server, log files, and per instance its output pipes, its
// private socket and what starting it takes. Starting an instance never
// fails for descriptors the listeners took.
func fdReserve(instances int) int { return 256 + 8*instances }

// addConns fills in what the proxies know: per instance its open and
// waiting connections and whether it is hung, per listener its
// connections and queue.
func (s *sockets) addConns(st *status.Runner) {
	defer s.addHTTP(st) // after the proxies, which set Conns
	// Status names processes by pid; map ids through the machine.
	per := map[int]*status.Instance{}
	for i := range st.Apps {
		for j := range st.Apps[i].Procs {
			if p := &st.Apps[i].Procs[j]; p.PID != 0 {
				per[p.PID] = p
			}
		}
	}
	for _, rt := range s.proxies {
		for _, b := range rt.px.Backends() {
			p := per[s.r.m.pidOf(InstanceID(b.ID))]
			if p == nil {
				continue
			}
			p.Conns += b.Conns
			p.Waiting += b.Waiting
			p.OldestWait = max(p.OldestWait, b.OldestWait)
			p.Hung = p.Hung || b.Hung
		}
	}
	for i := range st.Listeners {
		l := &st.Listeners[i]
		if l.Mode != string(hclconfig.Proxy) {
			continue
		}
		for _, rt := range s.proxies {
			if rt.name != l.Name {
				continue
			}
			ps := rt.px.Stats()
			l.Conns, l.MaxConns, l.Queued, l.QueueTimeouts = ps.Open, ps.MaxConnections, ps.Queued, ps.QueueTimeouts
		}
	}
}

// close stops every proxy: no new connections; those under way get a
// moment to finish.
func (s *sockets) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	s.closeHTTP(ctx, &wg)
	for ln, rt := range s.proxies {
		delete(s.proxies, ln)
		wg.Go(func() {
			rt.px.Close(ctx)
			<-rt.done
		})
	}
	wg.Wait()
}
