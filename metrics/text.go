package metrics

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// The Prometheus text exposition format, version 0.0.4, written by hand:
// the official client library and its dependencies (protobuf among them)
// were a quarter of the binary, and their package init alone cost every
// process of it (the runner, its guard, each command) about 1 MiB of
// PSS, metrics block or not. clusterrun exports gauges, counters and one
// histogram, all with fixed names: what is left to get right is escaping
// and number formatting, tested against the format's own parser.

// contentType is what the text format is served as.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// desc describes a metric family. labels are the label names, in the
// order that samples give their values.
type desc struct {
	name, help, typ string
	labels          []string
}

// family is one family's samples in a scrape.
type family struct {
	desc
	metrics []metric
}

// metric is one series: a gauge's or counter's value, or a histogram.
type metric struct {
	values []string // label values, in desc.labels' order
	value  float64
	hist   *histogram
}

// histogram counts observations per bucket (not cumulative: the writer
// adds them up), with their sum.
type histogram struct {
	upper  []float64 // bucket upper bounds, ascending; +Inf is implied
	counts []uint64  // len(upper)+1: the last one is the +Inf bucket
	sum    float64
}

func newHistogram(upper []float64) *histogram {
	return &histogram{upper: upper, counts: make([]uint64, len(upper)+1)}
}

func (h *histogram) observe(v float64) {
	i, _ := slices.BinarySearch(h.upper, v) // the first bound >= v: le is inclusive
	h.counts[i]++
	h.sum += v
}

func (h *histogram) clone() *histogram {
	return &histogram{upper: h.upper, counts: slices.Clone(h.counts), sum: h.sum}
}

// add adds a sample of a gauge or counter.
func (f *family) add(v float64, values ...string) {
	f.metrics = append(f.metrics, metric{values: values, value: v})
}

// appendText appends the families in the text format, sorted as the
// official client does (families by name, series by label values), and
// leaves out families without a series.
func appendText(b []byte, fams []*family) []byte {
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	for _, f := range fams {
		if len(f.metrics) == 0 {
			continue
		}
		slices.SortFunc(f.metrics, func(x, y metric) int { return slices.Compare(x.values, y.values) })
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.typ...)
		b = append(b, '\n')
		for _, m := range f.metrics {
			if m.hist == nil {
				b = appendSample(b, f.name, f.labels, m.values, "", "", m.value)
				continue
			}
			var n uint64
			for i, c := range m.hist.counts {
				n += c
				le := math.Inf(1)
				if i < len(m.hist.upper) {
					le = m.hist.upper[i]
				}
				b = appendSample(b, f.name+"_bucket", f.labels, m.values, "le", formatFloat(le), float64(n))
			}
			b = appendSample(b, f.name+"_sum", f.labels, m.values, "", "", m.hist.sum)
			b = appendSample(b, f.name+"_count", f.labels, m.values, "", "", float64(n))
		}
	}
	return b
}

// appendSample writes one line: name{labels} value, with the extra label
// (a histogram bucket's le) last when there is one.
func appendSample(b []byte, name string, labels, values []string, extra, extraValue string, v float64) []byte {
	b = append(b, name...)
	if len(labels) > 0 || extra != "" {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, l, values[i])
		}
		if extra != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, extra, extraValue)
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, formatFloat(v)...)
	return append(b, '\n')
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped escapes text for the format: backslash and newline in a
// HELP line, and the double quote too in a label value. Text that is not
// UTF-8 is made so (U+FFFD), since the format is UTF-8 and its readers
// refuse anything else.
func appendEscaped(b []byte, s string, quote bool) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// formatFloat writes a value as the official client does: the shortest
// form that reads back the same, and +Inf, -Inf and NaN by name.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
