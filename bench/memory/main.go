// Command memory shows where clusterrun's memory goes: /proc/PID/smaps of
// the runner and its guard by kind of mapping, with 8 instances of the
// Node hello app, idle and while `clusterrun status` runs every 0.5 s (the
// figure of bench/startup, taken apart); the guard alone, idle on its
// pipe; the floor, a Go program that only serves JSON over HTTP on a unix
// socket, idle and while polled the same way; and pm2's daemon, idle and
// while `pm2 jlist` runs every 0.5 s.
//
// The kinds: the executable's text, rodata (constants, type data, the
// pclntab) and data as mapped, libraries, anonymous memory (heap arenas,
// stacks, bss, the runtime's metadata) and the main stack. A page of the
// executable counts once it is mapped: a fault maps the 64 KiB around the
// touched page (fault_around_bytes), so text and rodata say how much of
// the binary a process touched, give or take.
//
// Run it through bench/memory/run.sh.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
	"github.com/clusterrun/clusterrun/bench/runners"
	"github.com/clusterrun/clusterrun/proc"
)

var (
	setup     = runners.Flags()
	floorBin  = flag.String("floor", "", "bench/memory/floor binary")
	reps      = flag.Int("reps", 3, "repetitions")
	instances = flag.Int("instances", 8, "instances")
	// Off every timer of the runner (0.2 s usage reading, 2 s sampler,
	// 1 s ready delay), as in bench/startup.
	settle = flag.Duration("settle", 2700*time.Millisecond, "idle time after every instance is ready, before the idle reading")
	// Past the collection Go forces every 2 minutes: until the first one,
	// a polled runner's heap only grows (to 5.3 MiB of anonymous memory
	// after 3 minutes, against 2.8 after 20 s).
	pollFor = flag.Duration("poll", 150*time.Second, "how long status is polled (every 0.5 s) before the polled reading")
)

// pollEvery is the pace of `watch -n 0.5 clusterrun status`.
const pollEvery = 500 * time.Millisecond

// reading is one process's (or two processes') memory by kind.
type reading map[string]report.Usage

func (r reading) total() report.Usage {
	var t report.Usage
	for _, u := range r {
		t.RSS, t.PSS, t.USS = t.RSS+u.RSS, t.PSS+u.PSS, t.USS+u.USS
	}
	return t
}

func sum(a, b reading) reading {
	out := reading{}
	for _, r := range []reading{a, b} {
		for k, u := range r {
			o := out[k]
			out[k] = report.Usage{RSS: o.RSS + u.RSS, PSS: o.PSS + u.PSS, USS: o.USS + u.USS}
		}
	}
	return out
}

func read(pid int) (reading, error) {
	m, err := report.Maps(pid)
	return reading(m), err
}

// results keeps the readings of each row, in the order rows first came.
type results struct {
	order []string
	rows  map[string][]reading
}

func (r *results) add(name string, rd reading) {
	if r.rows[name] == nil {
		r.order = append(r.order, name)
	}
	r.rows[name] = append(r.rows[name], rd)
}

func main() {
	flag.Parse()
	if setup.Clusterrun == "" || setup.Work == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/memory/run.sh")
		os.Exit(2)
	}
	report.Header(fmt.Sprintf("where the memory goes: clusterrun's runner and guard by mapping, %d instances", *instances), setup.PM2,
		"memory:  /proc/PID/smaps by kind of mapping (never RSS alone: PSS splits a page among the processes that map it, USS counts the pages only one maps);",
		fmt.Sprintf("         idle = %s after every instance is ready; polled = after %s of `clusterrun status` / `pm2 jlist` / GET /v1/status every %s", *settle, *pollFor, pollEvery),
		"floor:   bench/memory/floor, a Go program that only serves JSON over HTTP on a unix socket (net/http), built as clusterrun is (CGO_ENABLED=0 -trimpath)")
	res := &results{rows: map[string][]reading{}}
	for rep := 1; rep <= *reps; rep++ {
		steps := []struct {
			name string
			run  func(*results) error
		}{{"clusterrun", clusterrun}, {"guard alone", guardAlone}, {"floor", floor}, {"pm2", pm2}}
		for _, s := range steps {
			if err := s.run(res); err != nil {
				fmt.Fprintf(os.Stderr, "rep %d, %s: %v\n", rep, s.name, err)
				os.Exit(1)
			}
		}
		fmt.Fprintf(os.Stderr, "rep %d done\n", rep)
	}
	printTable(res)
}

// measure runs the Node hello app under the runner called name, and
// takes its readings idle, then after status has been polled for -poll.
func measure(name string, take func(r runners.Runner, moment string) error) error {
	r, err := setup.New(name, *instances)
	if err != nil {
		return err
	}
	if p, ok := r.(*runners.PM2); ok {
		if err := p.StartDaemon(); err != nil {
			return err
		}
	}
	port, err := report.FreePort()
	if err != nil {
		return err
	}
	if err := r.Launch(port); err != nil {
		r.Stop()
		return err
	}
	defer r.Stop()
	if err := r.WaitReady(60 * time.Second); err != nil {
		return err
	}
	time.Sleep(*settle)
	if err := take(r, "idle"); err != nil {
		return err
	}
	for end := time.Now().Add(*pollFor); time.Now().Before(end); time.Sleep(pollEvery) {
		if err := r.Status(); err != nil {
			return err
		}
	}
	return take(r, "polled")
}

func clusterrun(res *results) error {
	return measure("clusterrun-node", func(r runners.Runner, moment string) error {
		sup := r.Supervisor()
		if len(sup) != 2 {
			return fmt.Errorf("found %d of clusterrun's two processes (runner and guard): %v", len(sup), sup)
		}
		return both(res, moment, sup)
	})
}

// both reads the runner and the guard, and adds them up.
func both(res *results, moment string, pids []int) error {
	runner, err := read(pids[0])
	if err != nil {
		return err
	}
	guard, err := read(pids[1])
	if err != nil {
		return err
	}
	res.add("runner, "+moment, runner)
	res.add("guard, "+moment, guard)
	res.add("runner + guard, "+moment, sum(runner, guard))
	return nil
}

// guardAlone starts the guard as the runner does (the binary with
// proc.GuardArg, its pipe on stdin) and reads it idle.
func guardAlone(res *results) error {
	var b [8]byte
	rand.Read(b[:])
	cmd := exec.Command(setup.Clusterrun, proc.GuardArg, "CLUSTERRUN_BENCH_GUARD="+hex.EncodeToString(b[:]))
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(*settle)
	rd, err := read(cmd.Process.Pid)
	in.Write([]byte("done\n"))
	in.Close()
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("guard: %v", werr)
	}
	if err != nil {
		return err
	}
	res.add("guard alone, idle", rd)
	return nil
}

func floor(res *results) error {
	if *floorBin == "" {
		return nil
	}
	dir, err := os.MkdirTemp(setup.Work, "floor-")
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "floor.sock")
	cmd := exec.Command(*floorBin, sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true, // a new connection each time, as clusterrun status makes
	}}
	get := func() error {
		resp, err := client.Get("http://floor/v1/status")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for get() != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("floor: no answer on %s within 30s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(*settle)
	rd, err := read(cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.add("floor, idle", rd)
	for end := time.Now().Add(*pollFor); time.Now().Before(end); time.Sleep(pollEvery) {
		if err := get(); err != nil {
			return err
		}
	}
	if rd, err = read(cmd.Process.Pid); err != nil {
		return err
	}
	res.add("floor, polled", rd)
	return nil
}

func pm2(res *results) error {
	if setup.PM2 == "" {
		return nil
	}
	return measure("pm2-node", func(r runners.Runner, moment string) error {
		rd, err := read(r.PID())
		if err == nil {
			res.add("pm2 daemon, "+moment, rd)
		}
		return err
	})
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func printTable(res *results) {
	fmt.Printf("\n%d runs each, MiB. Mapped (Rss) by kind, medians; PSS and USS of the whole process: min / median / max\n\n", *reps)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	head := []string{"process, moment"}
	for _, k := range report.Kinds {
		head = append(head, k)
	}
	fmt.Fprintln(tw, strings.Join(append(head, "PSS", "USS", ""), "\t"))
	for _, name := range res.order {
		rds := res.rows[name]
		cells := []string{name}
		for _, k := range report.Kinds {
			v := report.Median(report.Values(rds, func(r reading) float64 { return mib(r[k].RSS) }))
			if strings.HasPrefix(name, "runner + guard") {
				// Rss would count the pages both map twice: PSS instead.
				v = report.Median(report.Values(rds, func(r reading) float64 { return mib(r[k].PSS) }))
			}
			cells = append(cells, fmt.Sprintf("%.2f", v))
		}
		cells = append(cells,
			report.Stat(report.Values(rds, func(r reading) float64 { return mib(r.total().PSS) }), "%.2f"),
			report.Stat(report.Values(rds, func(r reading) float64 { return mib(r.total().USS) }), "%.2f"), "")
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	fmt.Println("\n(runner + guard rows give PSS by kind: their Rss would count twice the pages both processes map.)")
}
