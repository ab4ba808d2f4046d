package httpserve

import (
	"fmt"
	"sync"
	"time"
)

// Burst logs the first of a run of similar events at once and the number
// of the others when the run is over (quiet for the window), so that a
// flood of refused requests is two lines, not thousands.
type Burst struct {
	logf   func(format string, args ...any)
	window time.Duration

	mu     sync.Mutex
	more   int
	last   string
	timer  *time.Timer
	closed bool
}

// NewBurst reports through logf; a burst ends after window without events.
func NewBurst(logf func(format string, args ...any), window time.Duration) *Burst {
	return &Burst{logf: logf, window: window}
}

// Note records one event: the first of a burst is logged now.
func (b *Burst) Note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.timer != nil {
		b.more++
		b.last = fmt.Sprintf(format, args...)
		b.timer.Reset(b.window)
		return
	}
	b.logf(format, args...)
	b.timer = time.AfterFunc(b.window, b.flush)
}

func (b *Burst) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.more > 0 && !b.closed {
		b.logf("%d more like it in that burst; the last: %s", b.more, b.last)
	}
	b.more, b.last, b.timer = 0, "", nil
}

// Stop ends the reporting; a burst under way is reported now.
func (b *Burst) Stop() {
	b.mu.Lock()
	t := b.timer
	b.mu.Unlock()
	if t != nil && t.Stop() {
		b.flush()
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}
