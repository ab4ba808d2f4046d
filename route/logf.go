package route

import (
	"fmt"
	"sync"
	"time"
)

// LogEvery is the least time between two messages of the same kind.
const LogEvery = 5 * time.Second

// Limiter passes at most one message per format string per LogEvery to logf
// and tells, with the next one it passes, how many it held back. A dead
// backend or an fd shortage then costs a log line every few seconds, not one
// per connection. Formats are constants of the data paths, so the map stays
// small.
type Limiter struct {
	logf func(format string, args ...any)
	now  func() time.Time // time.Now; a test seam

	mu   sync.Mutex
	seen map[string]*logState
}

type logState struct {
	last       time.Time
	suppressed int
}

// NewLimiter returns a Limiter in front of logf (nil: silent).
func NewLimiter(logf func(string, ...any)) *Limiter {
	return &Limiter{logf: logf, now: time.Now, seen: make(map[string]*logState)}
}

// Printf passes the message on unless one of the same format passed less
// than LogEvery ago.
func (l *Limiter) Printf(format string, args ...any) {
	if l.logf == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	st := l.seen[format]
	if st == nil {
		st = &logState{}
		l.seen[format] = st
	} else if now.Sub(st.last) < LogEvery {
		st.suppressed++
		l.mu.Unlock()
		return
	}
	n, prev := st.suppressed, st.last
	st.last, st.suppressed = now, 0
	l.mu.Unlock()
	// logf runs without the lock: a slow log sink holds up only its caller.
	if n > 0 {
		l.logf("%s (%d similar messages suppressed in the last %v)", fmt.Sprintf(format, args...), n, now.Sub(prev).Round(time.Second))
		return
	}
	l.logf(format, args...)
}
