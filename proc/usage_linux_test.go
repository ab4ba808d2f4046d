package proc

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for i, tc := range []struct {
		in   string
		pgrp int
		cpu  time.Duration
		rss  int64
		ok   bool
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 1000 77 18446744073709551615", 42, 2 * time.Second, 77, true},
		{"7 (a) b (c)) R 1 9 9 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 100 1000 5 0", 9, 30 * time.Millisecond, 5, true},
		{"garbage", 0, 0, 0, false},
		{"1 (x) S 1 2", 0, 0, 0, false},
	} {
		pg, cpu, rss, ok := parseStat([]byte(tc.in))
		if ok != tc.ok || (ok && (pg != tc.pgrp || cpu != tc.cpu || rss != tc.rss)) {
			t.Errorf("#%d parseStat = %d %v %d %v; want %d %v %d %v", i, pg, cpu, rss, ok, tc.pgrp, tc.cpu, tc.rss, tc.ok)
		}
	}
}

func TestGroupUsage(t *testing.T) {
	s := start(t, "sleep")
	if _, err := s.out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	u, err := GroupUsage([]int{s.pid})
	if err != nil {
		t.Fatal(err)
	}
	got := u[s.pid]
	if got.Procs != 1 || got.RSS <= 0 {
		t.Fatalf("usage of a live sleeper group = %+v; want 1 process with RSS > 0", got)
	}
}
