package top

// trendLen is how many samples a sparkline shows (one a second: the last 12 seconds).
const trendLen = 12

// ring keeps the last trendLen samples.
type ring struct {
	v []float64
}

func (r *ring) add(x float64) {
	r.v = append(r.v, x)
	if len(r.v) > trendLen {
		r.v = r.v[len(r.v)-trendLen:]
	}
}

func (r *ring) last() float64 {
	if len(r.v) == 0 {
		return 0
	}
	return r.v[len(r.v)-1]
}

var bars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the samples, scaled from 0 to their maximum (or to
// floor, when all are below it: a flat idle line stays low), padded on the
// left to trendLen cells.
func (r *ring) sparkline(floor float64) string {
	top := floor
	for _, x := range r.v {
		top = max(top, x)
	}
	out := make([]rune, 0, trendLen)
	for i := len(r.v); i < trendLen; i++ {
		out = append(out, ' ')
	}
	for _, x := range r.v {
		i := 0
		if top > 0 {
			i = int(x / top * float64(len(bars)-1))
		}
		out = append(out, bars[min(max(i, 0), len(bars)-1)])
	}
	return string(out)
}
