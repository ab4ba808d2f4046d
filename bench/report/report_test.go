package report

import (
	"math"
	"testing"
)

func TestStatAndMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		v      []float64
		stat   string
		median float64
	}{
		{nil, "-", nan},
		{[]float64{nan, math.Inf(1)}, "-", nan},
		{[]float64{3}, "3", 3},
		{[]float64{2, 2}, "2", 2},
		{[]float64{3, 1, nan, 2}, "1 / 2 / 3", 2},
		{[]float64{4, 1, 2, 3}, "1 / 2.5 / 4", 2.5},
	} {
		if got := Stat(tc.v, "%g"); got != tc.stat {
			t.Errorf("Stat(%v) = %q, want %q", tc.v, got, tc.stat)
		}
		if got := Median(tc.v); got != tc.median && !(math.IsNaN(got) && math.IsNaN(tc.median)) {
			t.Errorf("Median(%v) = %g, want %g", tc.v, got, tc.median)
		}
	}
	if got := Ratio(1, Median(nil)); got != "n/a" {
		t.Errorf("Ratio over no values = %q, want n/a", got)
	}
}
