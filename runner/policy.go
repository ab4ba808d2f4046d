package runner

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
)

// restarts reports whether an exit with st is followed by a restart.
func restarts(p hclconfig.RestartPolicy, st proc.Status) bool {
	switch p {
	case hclconfig.RestartAlways:
		return true
	case hclconfig.RestartOnFailure:
		return !st.Success()
	}
	return false
}

// backoffDelay is the wait before restart number consecutive (1-based) of a
// crash loop: base doubled per consecutive crash, capped at max, plus up to
// 10% jitter (j in [0,1)) so that instances that crashed together do not
// restart in lockstep.
func backoffDelay(base, max time.Duration, consecutive int, j float64) time.Duration {
	d := base
	for i := 1; i < consecutive && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return (d + time.Duration(j*0.1*float64(d))).Round(time.Millisecond)
}

func jitter() float64 { return rand.Float64() }

// pruneBefore drops the times before t from a sorted slice, in place.
func pruneBefore(ts []time.Time, t time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(t) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}

// human prints a duration the way a person writes it in cluster.hcl:
// "60s" rather than "1m0s", "400ms", "1.5s".
func human(d time.Duration) string {
	switch {
	case d >= time.Second && d%time.Second == 0 && d < time.Hour:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// bytesHuman prints a byte count the way max_memory is written: "512MiB".
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 4; v /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + string("KMGTP"[exp]) + "iB"
}

// plural writes a count with its noun: "1 process", "3 processes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
