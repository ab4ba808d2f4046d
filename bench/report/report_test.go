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

func TestParseSmaps(t *testing.T) {
	const smaps = `00400000-00bbb000 r-xp 00000000 fe:00 123 /usr/bin/clusterrun
Rss:                6508 kB
Pss:                3510 kB
Private_Clean:       512 kB
Private_Dirty:         0 kB
00bbb000-013b7000 r--p 007bb000 fe:00 123 /usr/bin/clusterrun
Rss:                5552 kB
Pss:                3192 kB
Private_Clean:       832 kB
Private_Dirty:         0 kB
013b7000-0149f000 rw-p 00fb7000 fe:00 123 /usr/bin/clusterrun
Rss:                 416 kB
Pss:                 254 kB
Private_Clean:         0 kB
Private_Dirty:        92 kB
0149f000-034e8000 rw-p 00000000 00:00 0 
Rss:                 108 kB
Pss:                 108 kB
Private_Clean:         0 kB
Private_Dirty:       108 kB
c000000000-c000400000 rw-p 00000000 00:00 0 
Rss:                2828 kB
Pss:                2828 kB
Private_Clean:         0 kB
Private_Dirty:      2828 kB
7f0000000000-7f0000020000 r-xp 00000000 fe:00 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 100 kB
Pss:                  10 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
7ffec3b73000-7ffec3b94000 rw-p 00000000 00:00 0                          [stack]
Rss:                  20 kB
Pss:                  20 kB
Private_Clean:         0 kB
Private_Dirty:        20 kB
7ffec3bf0000-7ffec3bf2000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Pss:                   0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
`
	got := parseSmaps([]byte(smaps), "/usr/bin/clusterrun")
	want := map[string]Usage{
		Text:   {6508 << 10, 3510 << 10, 512 << 10},
		ROData: {5552 << 10, 3192 << 10, 832 << 10},
		Data:   {416 << 10, 254 << 10, 92 << 10},
		Anon:   {(108 + 2828) << 10, (108 + 2828) << 10, (108 + 2828) << 10},
		Libs:   {100 << 10, 10 << 10, 0},
		Stack:  {20 << 10, 20 << 10, 20 << 10},
	}
	if len(got) != len(want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
}
