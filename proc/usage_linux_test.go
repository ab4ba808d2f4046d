package proc

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for i, tc := range []struct {
		in   string
		pgrp int
		cpu  time.Duration
		ok   bool
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 1000 77 18446744073709551615\n", 42, 2 * time.Second, true},
		{"7 (a) b (c)) R 1 9 9 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 100 1000 5 0", 9, 30 * time.Millisecond, true},
		{"garbage", 0, 0, false},
		{"1 (x) S 1 2", 0, 0, false},
		{"1 (x) S 1 -2 0 0 -1 0 0 0 0 0 1 2", 0, 0, false},
	} {
		pg, cpu, ok := parseStat([]byte(tc.in))
		if ok != tc.ok || (ok && (pg != tc.pgrp || cpu != tc.cpu)) {
			t.Errorf("#%d parseStat = %d %v %v; want %d %v %v", i, pg, cpu, ok, tc.pgrp, tc.cpu, tc.ok)
		}
	}
}

func TestParseRollup(t *testing.T) {
	const in = `558b2c78d000-7ffc8ad45000 ---p 00000000 00:00 0                          [rollup]
Rss:                1728 kB
Pss:                 364 kB
Pss_Dirty:           108 kB
Pss_Anon:            108 kB
Shared_Clean:       1580 kB
Private_Clean:        40 kB
Private_Dirty:       108 kB
Private_Hugetlb:       2 kB
Swap:                  0 kB
`
	got := parseRollup([]byte(in))
	want := Memory{PSS: 364 << 10, USS: (40 + 108 + 2) << 10}
	if got != want {
		t.Errorf("parseRollup = %+v, want %+v", got, want)
	}
	if got := parseRollup([]byte("Pss: x kB\nnothing\n")); got != (Memory{}) {
		t.Errorf("parseRollup of garbage = %+v, want zero", got)
	}
}

func TestGroupUsage(t *testing.T) {
	s := start(t, "sleep")
	if _, err := s.out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	u, err := GroupUsage([]int{s.pid}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := u[s.pid]
	if got.Procs != 1 || got.Memory.PSS <= 0 || got.Memory.USS <= 0 || got.Memory.USS > got.Memory.PSS {
		t.Fatalf("usage of a live sleeper group = %+v; want 1 process with 0 < USS <= PSS", got)
	}
	u, err = GroupUsage([]int{s.pid}, false)
	if err != nil || u[s.pid].Procs != 1 || u[s.pid].Memory != (Memory{}) {
		t.Fatalf("usage without memory = %+v, %v; want 1 process, no memory read", u[s.pid], err)
	}
}

func TestProcessMemory(t *testing.T) {
	self, err := ProcessMemory(os.Getpid())
	if err != nil || self.PSS <= 0 || self.USS <= 0 {
		t.Fatalf("ProcessMemory(self) = %+v, %v; want PSS and USS above 0", self, err)
	}
	s := start(t, "sleep")
	if _, err := s.out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	child, err := ProcessMemory(s.pid)
	if err != nil || child.PSS <= 0 {
		t.Fatalf("ProcessMemory(child) = %+v, %v; want PSS above 0", child, err)
	}
	// No process has pid 0 or a pid above pid_max: they count nothing.
	if got, err := ProcessMemory(s.pid, 0, 1<<30); err != nil || got.PSS <= 0 || got.PSS > 2*child.PSS {
		t.Fatalf("ProcessMemory(child, 0, gone) = %+v, %v; want about the child's %+v", got, err, child)
	}
}

// The walks of /proc make no garbage per process on the machine: a status
// every half second must not grow the runner's heap.
func TestUsageAllocations(t *testing.T) {
	s := start(t, "sleep")
	if _, err := s.out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	pids := []int{s.pid, os.Getpid()}
	GroupUsage(pids, true) // the scratch buffers, once
	if n := testing.AllocsPerRun(20, func() { GroupUsage(pids, true) }); n > 2 {
		t.Errorf("GroupUsage allocates %.0f times a call, want at most 2 (the result map)", n)
	}
	if n := testing.AllocsPerRun(20, func() { ProcessMemory(pids...) }); n > 0 {
		t.Errorf("ProcessMemory allocates %.0f times a call, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() { OpenFDs() }); n > 0 {
		t.Errorf("OpenFDs allocates %.0f times a call, want 0", n)
	}
}

func TestOpenFDs(t *testing.T) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	before := OpenFDs()
	if want := len(ents) - 1; before != want {
		t.Errorf("OpenFDs = %d, want %d (ReadDir's count less its own descriptor)", before, want)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := OpenFDs(); got != before+1 {
		t.Errorf("OpenFDs with one more file open = %d, want %d", got, before+1)
	}
}
