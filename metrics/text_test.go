package metrics

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clusterrun/clusterrun/httpserve/httpservetest"
	"github.com/clusterrun/clusterrun/status"
)

// TestTextMatchesClientLibrary: what the writer gives is byte for byte
// what the official client library writes for the same metrics (it is
// a test dependency only): a histogram with its buckets, _sum and _count,
// counters and gauges with escaped label values and HELP text, and the
// special values.
func TestTextMatchesClientLibrary(t *testing.T) {
	hostile := "a \"quoted\" \\back\\slash\nnew line ü"
	help := "Help with a \\backslash, a \"quote\"\nand a new line."
	observations := []float64{0.01, 0.05, 0.07, 1, 1.5, 299, 300, 301, 1e9}

	reg := prometheus.NewRegistry()
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: help, Buckets: readyBuckets}, []string{"app"})
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"app", "reason"})
	gv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g", Help: "g"}, []string{"app"})
	g0 := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g0", Help: "no labels"})
	reg.MustRegister(hv, cv, gv, g0)

	h := newHistogram(readyBuckets)
	hf := &family{desc: desc{"h_seconds", help, "histogram", []string{"app"}}}
	for _, v := range observations {
		hv.WithLabelValues(hostile).Observe(v)
		h.observe(v)
	}
	hf.metrics = append(hf.metrics, metric{values: []string{hostile}, hist: h})
	hv.WithLabelValues("empty") // a histogram with no observation
	hf.metrics = append(hf.metrics, metric{values: []string{"empty"}, hist: newHistogram(readyBuckets)})

	cf := &family{desc: desc{"c_total", "c", "counter", []string{"app", "reason"}}}
	for _, c := range []struct {
		app, reason string
		v           float64
	}{{"web", "crash", 3}, {"web", "health", 0}, {"api", "crash", 1e21}, {hostile, "x", 12345678}} {
		cv.WithLabelValues(c.app, c.reason).Add(c.v)
		cf.add(c.v, c.app, c.reason)
	}
	gf := &family{desc: desc{"g", "g", "gauge", []string{"app"}}}
	for _, g := range []struct {
		app string
		v   float64
	}{{"inf", math.Inf(1)}, {"-inf", math.Inf(-1)}, {"nan", math.NaN()}, {"small", 1.25e-7}, {"neg", -0.5}, {"int", 1700000000}, {"frac", 1700000000.123}} {
		gv.WithLabelValues(g.app).Set(g.v)
		gf.add(g.v, g.app)
	}
	g0.Set(42)
	g0f := &family{desc: desc{"g0", "no labels", "gauge", nil}}
	g0f.add(42)
	empty := &family{desc: desc{"unused", "never written", "gauge", nil}}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&want, mf); err != nil {
			t.Fatal(err)
		}
	}
	got := appendText(nil, []*family{gf, empty, hf, g0f, cf})
	if string(got) != want.String() {
		t.Errorf("text differs from the client library's\ngot:\n%s\nwant:\n%s", got, want.String())
	}
}

// FuzzText: any label value and HELP text, and any value, read back the
// same through the format's own parser; text that is not UTF-8 reads back
// with U+FFFD, as the writer says. (testdata: a HELP with leading blanks.)
func FuzzText(f *testing.F) {
	f.Add("web", "Help.", 1.5)
	f.Add("a\"b\\c\nd", "x\\y\nz\"", math.Inf(-1))
	f.Add("\xff\xfe", "\\n", math.NaN())
	f.Add("", "", 0.0)
	f.Fuzz(func(t *testing.T, label, help string, v float64) {
		fam := &family{desc: desc{"x_total", help, "counter", []string{"app"}}}
		fam.add(v, label)
		text := appendText(nil, []*family{fam})
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
		if err != nil {
			t.Fatalf("cannot parse %q: %v", text, err)
		}
		m := fams["x_total"]
		if m == nil || len(m.GetMetric()) != 1 {
			t.Fatalf("no x_total in %q", text)
		}
		wantHelp, wantLabel := strings.ToValidUTF8(help, "\uFFFD"), strings.ToValidUTF8(label, "\uFFFD")
		// The format reads HELP from its first character that is not a
		// blank or a tab (the client library writes them all the same;
		// clusterrun's HELP texts start with a letter).
		wantHelp = strings.TrimLeft(wantHelp, " \t")
		if m.GetHelp() != wantHelp {
			t.Errorf("help %q read back as %q", wantHelp, m.GetHelp())
		}
		got := m.GetMetric()[0]
		if l := got.GetLabel(); len(l) != 1 || l[0].GetValue() != wantLabel {
			t.Errorf("label %q read back as %v", wantLabel, l)
		}
		if g := got.GetCounter().GetValue(); g != v && !(math.IsNaN(g) && math.IsNaN(v)) {
			t.Errorf("value %v read back as %v", v, g)
		}
	})
}

// gateSource holds every snapshot until released, and says when one is
// waiting.
type gateSource struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gateSource) Snapshot(ctx context.Context) (status.Runner, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return status.Runner{}, ctx.Err()
	}
	return snapshot(1), nil
}

// TestScrapesBounded: past maxScrapes scrapes in progress, one more is
// answered 503 at once instead of queueing on the runner's loop; once they
// are done, scrapes are served again.
func TestScrapesBounded(t *testing.T) {
	src := &gateSource{entered: make(chan struct{}), release: make(chan struct{})}
	m := New(src)
	m.col.timeout = time.Minute // only a hang would reach it
	codes := make(chan int, maxScrapes)
	for range maxScrapes {
		go func() {
			rec := httptest.NewRecorder()
			httpservetest.Handler(m.Handler()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			codes <- rec.Code
		}()
	}
	for i := range maxScrapes {
		select {
		case <-src.entered:
		case <-time.After(time.Minute):
			t.Fatalf("only %d of %d scrapes reached the runner", i, maxScrapes)
		}
	}
	rec := httptest.NewRecorder()
	httpservetest.Handler(m.Handler()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("scrape past the bound: %d, want 503", rec.Code)
	}
	close(src.release)
	for range maxScrapes {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("held scrape: %d, want 200", c)
		}
	}
	go func() {
		for range src.entered {
		}
	}()
	defer close(src.entered)
	fams := scrape(t, m.Handler())
	if v, _ := value(fams, "clusterrun_up"); v != 1 {
		t.Errorf("after the held scrapes: clusterrun_up %v, want 1", v)
	}
}
