package httpmode

import (
	"math/bits"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/route"
	"github.com/clusterrun/clusterrun/status"
)

// The figures of each instance: requests by status class and a latency
// histogram, for the metrics endpoint (counted per app and slot, so that
// they outlive the processes, as counters must), and the last minute's rate
// and percentiles, for status (per process). One short lock per request.

// Buckets are the upper bounds of the latency histogram the metrics
// endpoint serves, in seconds (Prometheus's defaults).
var Buckets = status.HTTPBuckets

// Classes of status codes: 1xx to 5xx.
const classes = 5

// Counts are the cumulative figures of one app's slot.
type Counts struct {
	// ByClass counts the answers by status class: ByClass[0] 1xx … [4] 5xx
	// (the runner's own 502, 503 and 504 included).
	ByClass [classes]uint64
	// Buckets counts the requests that took at most Buckets[i] seconds
	// (not cumulative: each request in one); the last is above them all.
	Buckets [12]uint64
	// Sum is the total duration in seconds.
	Sum float64
}

// slotStats are the cumulative figures of one app's instance number.
type slotStats struct {
	mu sync.Mutex
	c  Counts
}

// fineBuckets: the last minute's latencies go into log-linear buckets of
// about 6% width (16 per power of two, from 1µs), enough for a median and
// a 99th percentile that are never off by more than that.
const (
	fineSub     = 16
	fineLog2    = 4
	fineBuckets = 30 * fineSub // 1µs … 2^30µs (about 18 minutes)
	windowSlots = 6            // 6 × 10s: the last minute
	windowSlot  = 10 * time.Second
)

// window is the figures of one 10-second slot.
type window struct {
	at   int64 // which slot (Now() / windowSlot); 0: empty
	n    uint32
	fine [fineBuckets]uint32
}

// instanceStats are the figures of one process: its slot's cumulative ones
// and its own last minute.
type instanceStats struct {
	slot *slotStats
	mu   sync.Mutex
	win  [windowSlots]window
}

func (s *Server) statsFor(t *route.Target) *instanceStats {
	k := slotKey{t.App, t.Slot}
	s.mu.Lock()
	ss := s.slots[k]
	if ss == nil {
		ss = &slotStats{}
		s.slots[k] = ss
	}
	s.mu.Unlock()
	return &instanceStats{slot: ss}
}

// observe counts one request of status that took d (ns), ending at now
// (route's clock).
func (st *instanceStats) observe(status int, d, now int64) {
	class := status/100 - 1
	if class < 0 || class >= classes {
		class = classes - 1
	}
	secs := float64(d) / 1e9
	b := 0
	for b < len(Buckets) && secs > Buckets[b] {
		b++
	}
	st.slot.mu.Lock()
	st.slot.c.ByClass[class]++
	st.slot.c.Buckets[b]++
	st.slot.c.Sum += secs
	st.slot.mu.Unlock()

	at := now/int64(windowSlot) + 1
	w := &st.win[at%windowSlots]
	f := fineIndex(d)
	st.mu.Lock()
	if w.at != at {
		*w = window{at: at}
	}
	w.n++
	w.fine[f]++
	st.mu.Unlock()
}

// fineIndex is the fine bucket of a duration in ns.
func fineIndex(d int64) int {
	us := uint64(d / 1000)
	if us < fineSub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	i := (e-fineLog2+1)*fineSub + int(us>>(e-fineLog2)) - fineSub
	return min(i, fineBuckets-1)
}

// fineUpper is the upper bound of fine bucket i, in ns.
func fineUpper(i int) time.Duration {
	if i < fineSub {
		return time.Duration(i+1) * time.Microsecond
	}
	e := i/fineSub + fineLog2 - 1
	m := i%fineSub + fineSub
	return time.Duration(uint64(m+1)<<(e-fineLog2)) * time.Microsecond
}

// Recent is one instance's last minute: answers per second and the median
// and 99th percentile of their durations (zero without requests).
type Recent struct {
	PerSec   float64
	P50, P99 time.Duration
}

func (st *instanceStats) recent(now int64) Recent {
	at := now/int64(windowSlot) + 1
	var sum [fineBuckets]uint32
	var n uint64
	st.mu.Lock()
	for i := range st.win {
		w := &st.win[i]
		if w.at == 0 || w.at <= at-windowSlots {
			continue
		}
		n += uint64(w.n)
		for j, c := range w.fine {
			sum[j] += c
		}
	}
	st.mu.Unlock()
	if n == 0 {
		return Recent{}
	}
	// The rate is over the slots covered: the current one only in part.
	span := float64(windowSlots-1)*windowSlot.Seconds() + float64(now%int64(windowSlot))/1e9
	r := Recent{PerSec: float64(n) / span}
	var seen uint64
	p50, p99 := (n+1)/2, (n*99+99)/100
	for j, c := range sum {
		seen += uint64(c)
		if r.P50 == 0 && seen >= p50 {
			r.P50 = fineUpper(j)
		}
		if seen >= p99 {
			r.P99 = fineUpper(j)
			break
		}
	}
	return r
}

// InstanceFigures are what the listener knows of one process.
type InstanceFigures struct {
	ID     uint64
	App    string
	Slot   int
	Recent Recent
	// InFlight are its requests under way (upgraded connections included).
	InFlight int
}

// SlotFigures are the cumulative figures of one app's instance number.
type SlotFigures struct {
	App  string
	Slot int
	Counts
}

// Figures returns the listener's figures: per process with requests in the
// last minute (or routable), and per slot since the start.
func (s *Server) Figures() ([]InstanceFigures, []SlotFigures) {
	now := route.Now()
	var inst []InstanceFigures
	for _, ts := range s.table.Targets() {
		b, ok := ts.Data.(*backend)
		if !ok {
			continue
		}
		inst = append(inst, InstanceFigures{ID: ts.ID, App: ts.App, Slot: ts.Slot, Recent: b.stats.recent(now), InFlight: ts.Leases})
	}
	s.mu.Lock()
	slots := make([]SlotFigures, 0, len(s.slots))
	for k, ss := range s.slots {
		ss.mu.Lock()
		slots = append(slots, SlotFigures{App: k.app, Slot: k.slot, Counts: ss.c})
		ss.mu.Unlock()
	}
	s.mu.Unlock()
	return inst, slots
}

func (cc *clientConn) logEntry(rq *request) {
	lb := &cc.s.access.own
	if rq.b != nil {
		lb = &rq.b.log
	}
	cc.s.access.add(lb, cc.forFor, cc.logLine, rq.status, rq.bytes, time.Duration(rq.end-rq.start))
}
