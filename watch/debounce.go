package watch

import (
	"sort"
	"time"
)

// maxDelayFactor caps a burst: a reload comes at the latest this many
// debounce periods after the burst's first change, so that a file written
// without pause (a log that nobody ignored) still reloads now and then
// instead of never.
const maxDelayFactor = 10

// maxCounted bounds the distinct paths remembered per burst, only for the
// "and N more" of the log line: a checkout of 100,000 files must not grow
// the watcher without bound.
const maxCounted = 1000

// debouncer turns changes into at most one reload per app and burst. It
// is a plain data structure with the time passed in, so that the timing
// rules are tested without a clock; the Watcher's goroutine owns it.
type debouncer struct {
	quiet, max time.Duration
	pending    map[string]*burst
}

// burst is the changes to one app since its last reload.
type burst struct {
	first       string
	paths       map[string]struct{}
	start, last time.Time
}

// fired is one reload to ask for.
type fired struct {
	app, path string
	// others counts the other distinct paths of the burst (at most
	// maxCounted-1).
	others int
}

func newDebouncer(quiet time.Duration) *debouncer {
	return &debouncer{quiet: quiet, max: maxDelayFactor * quiet, pending: map[string]*burst{}}
}

// add records a change of path for app at now. Each app has its own
// burst, so that a stream of changes to one app delays no other.
func (d *debouncer) add(app, path string, now time.Time) {
	b := d.pending[app]
	if b == nil {
		b = &burst{first: path, paths: map[string]struct{}{}, start: now}
		d.pending[app] = b
	}
	b.last = now
	if len(b.paths) < maxCounted {
		b.paths[path] = struct{}{}
	}
}

// deadline is when b's reload is due: once no change came for the quiet
// period, and no later than max after its first change.
func (d *debouncer) deadline(b *burst) time.Time {
	at := b.last.Add(d.quiet)
	if limit := b.start.Add(d.max); limit.Before(at) {
		return limit
	}
	return at
}

// next returns the earliest deadline, if any burst is pending.
func (d *debouncer) next() (time.Time, bool) {
	var at time.Time
	found := false
	for _, b := range d.pending {
		if dl := d.deadline(b); !found || dl.Before(at) {
			at, found = dl, true
		}
	}
	return at, found
}

// due removes and returns the bursts whose deadline has passed at now,
// ordered by app name for a stable log.
func (d *debouncer) due(now time.Time) []fired {
	var out []fired
	for app, b := range d.pending {
		if d.deadline(b).After(now) {
			continue
		}
		out = append(out, fired{app: app, path: b.first, others: len(b.paths) - 1})
		delete(d.pending, app)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].app < out[j].app })
	return out
}
