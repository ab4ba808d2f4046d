package httpmode

import (
	"strconv"
	"sync"
	"time"
)

// The access log: one line per request, written into the app's log stream
// as a line of the instance that answered (or of the listener, for an
// answer of the runner's own). A request only formats its line into its
// instance's buffer; a goroutine of the server hands the buffers to the
// sink in batches, so a busy instance costs one write of the log per
// batch, not per request, and a slow log never holds up a request: past
// maxLogBuffer the lines are dropped and counted.

// AccessLine is where the lines go: lines of the instance id (app's
// instance slot), each ended by a newline. id is 0 for the runner's own
// answers (no instance took the request).
type AccessLine func(app string, slot int, id uint64, lines []byte)

// maxLogBuffer bounds the lines waiting per instance.
const maxLogBuffer = 1 << 20

type accessLog struct {
	sink AccessLine
	kick chan struct{}

	mu      sync.Mutex
	pending []*logBuf
	// own holds the lines of the runner's own answers.
	own logBuf
	// dropped counts the lines dropped since the last batch.
	dropped int
}

// logBuf is one instance's waiting lines.
type logBuf struct {
	app  string
	slot int
	id   uint64
	mu   sync.Mutex
	b    []byte
	// queued: it is in accessLog.pending.
	queued bool
}

func newAccessLog(sink AccessLine) *accessLog {
	return &accessLog{sink: sink, kick: make(chan struct{}, 1)}
}

// add formats the line of one request.
func (a *accessLog) add(lb *logBuf, client, req []byte, status int, bytes int64, d time.Duration) {
	lb.mu.Lock()
	if len(lb.b) > maxLogBuffer {
		lb.mu.Unlock()
		a.mu.Lock()
		a.dropped++
		a.mu.Unlock()
		return
	}
	b := lb.b
	if len(client) > 0 {
		b = append(b, client...)
		b = append(b, ' ')
	}
	b = appendQuoted(b, req)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, "B "...)
	b = appendDuration(b, d)
	b = append(b, '\n')
	lb.b = b
	queue := !lb.queued
	lb.queued = true
	lb.mu.Unlock()
	if queue {
		a.mu.Lock()
		a.pending = append(a.pending, lb)
		a.mu.Unlock()
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// appendDuration appends d in milliseconds with three decimals.
func appendDuration(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	b = strconv.AppendInt(b, us/1000, 10)
	b = append(b, '.')
	f := us % 1000
	b = append(b, byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	return append(b, "ms"...)
}

// run hands the waiting lines to the sink until done, then once more.
func (a *accessLog) run(done <-chan struct{}) {
	var out []byte
	for {
		select {
		case <-a.kick:
		case <-done:
			a.flush(&out)
			return
		}
		a.flush(&out)
	}
}

func (a *accessLog) flush(out *[]byte) {
	a.mu.Lock()
	pending := a.pending
	a.pending = nil
	dropped := a.dropped
	a.dropped = 0
	a.mu.Unlock()
	for _, lb := range pending {
		lb.mu.Lock()
		*out = append((*out)[:0], lb.b...)
		lb.b = lb.b[:0]
		lb.queued = false
		lb.mu.Unlock()
		a.sink(lb.app, lb.slot, lb.id, *out)
	}
	if dropped > 0 {
		*out = strconv.AppendInt((*out)[:0], int64(dropped), 10)
		*out = append(*out, " access log lines dropped: the log did not keep up\n"...)
		a.sink("", -1, 0, *out)
	}
	if cap(*out) > maxLogBuffer {
		*out = nil
	}
}
