// Command logpath measures what clusterrun's log path costs: one app prints
// a million 57-byte lines as fast as it can and then sleeps, under
// `clusterrun up` with the runner's stdout going to a file. It reports
//
//   - wall: from starting the process until the app's last line is in the
//     output file;
//   - runner CPU: utime+stime of the runner process (from /proc/PID/stat,
//     read once the last line has arrived, before it is stopped), which
//     leaves out the app's own CPU;
//   - the same app writing straight to a file (wall), and the ratio of the
//     two walls;
//   - the runner's peak PSS during the flood, and its PSS with 8 idle
//     instances that have each printed a little;
//   - for reference, the same app writing into a pipe that a minimal Go
//     program (`logpath sink`) drains and discards: its wall time and CPU.
//     This is what reading the pipe costs any Go runner, before formatting
//     or writing anything; with one write(2) per line it is dominated by
//     the wake-ups between the app and the reader.
//
// The app is this binary run as `logpath spam`. By default it makes one
// write(2) per line, like Go's log package or an unbuffered print; -chunk
// makes it block-buffer instead.
//
// Run it through bench/logpath/run.sh. Nothing uses the network.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
)

// lineLen is the length of each line the app prints, newline included.
const lineLen = 57

var (
	clusterrun = flag.String("clusterrun", "", "clusterrun binary to measure")
	work       = flag.String("work", "", "scratch directory (output files go here)")
	reps       = flag.Int("reps", 5, "repetitions")
	lines      = flag.Int("lines", 1_000_000, "lines the app prints")
	chunk      = flag.Int("chunk", 0, "app write size in bytes; 0 = one write(2) per line")
	clkTck     = flag.Int("clk-tck", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	timeout    = flag.Duration("timeout", 2*time.Minute, "bound on each run")
	idle       = flag.Int("idle-instances", 8, "instances for the idle-PSS measurement; 0 skips it")
	label      = flag.String("label", "", "free text printed in the header (e.g. the source tree)")
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "spam" {
		spam(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "sink" {
		sink(os.Args[2:])
		return
	}
	flag.Parse()
	if *clusterrun == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: see bench/logpath/run.sh")
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "logpath:", err)
		os.Exit(1)
	}
}

// spam is the app: lines of exactly lineLen bytes numbered from 0, written
// as fast as it can, then a sleep so that the runner has nothing left to do
// but its own work. The sleep is bounded so that nothing outlives a crashed
// driver for long.
func spam(args []string) {
	fs := flag.NewFlagSet("spam", flag.ExitOnError)
	n := fs.Int("lines", 1_000_000, "lines to print")
	chunk := fs.Int("chunk", 0, "write size; 0 = one write per line")
	sleep := fs.Duration("sleep", 5*time.Minute, "how long to stay up afterwards")
	fs.Parse(args)

	size := max(*chunk, lineLen)
	buf := make([]byte, 0, size+lineLen)
	out := os.Stdout
	for i := range *n {
		buf = appendLine(buf, i)
		if *chunk == 0 || len(buf) >= *chunk || i == *n-1 {
			if _, err := out.Write(buf); err != nil {
				os.Exit(1)
			}
			buf = buf[:0]
		}
	}
	time.Sleep(*sleep)
}

// appendLine appends line i: "seq=0000042 " and a filler up to lineLen.
func appendLine(b []byte, i int) []byte {
	const filler = "GET /api/v1/users 200 1.234ms request_id=7f3a9c2e"
	start := len(b)
	b = append(b, "seq="...)
	b = appendSeq(b, i)
	b = append(b, ' ')
	b = append(b, filler[:lineLen-1-(len(b)-start)]...)
	return append(b, '\n')
}

func appendSeq(b []byte, i int) []byte {
	var d [7]byte
	for k := len(d) - 1; k >= 0; k-- {
		d[k] = byte('0' + i%10)
		i /= 10
	}
	return append(b, d[:]...)
}

// sink is the reference reader: the least any Go program can do with the
// app's pipe.
// It reads stdin with a 64 KiB buffer and throws the bytes away; once it has
// read -bytes, it prints its own CPU time (getrusage) in nanoseconds on
// stdout, then drains stdin to EOF.
func sink(args []string) {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	want := fs.Int64("bytes", 0, "bytes to read before reporting")
	fs.Parse(args)
	buf := make([]byte, 64<<10)
	var got int64
	reported := false
	for {
		n, err := os.Stdin.Read(buf)
		got += int64(n)
		if got >= *want && !reported {
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Println(ru.Utime.Nano() + ru.Stime.Nano())
			reported = true
		}
		if err != nil {
			return
		}
	}
}

type sample struct {
	wall     time.Duration
	cpu      time.Duration // runner only
	peakPSS  int64         // runner only
	pss      int64         // runner only, at the end
	outBytes int64
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if *lines < 1 {
		return errors.New("-lines must be at least 1")
	}
	if *reps < 1 {
		return errors.New("-reps must be at least 1: the table reports min, median and max of the runs")
	}
	header()
	var files, runners, sinks []sample
	for rep := 1; rep <= *reps; rep++ {
		f, err := measureFile(self)
		if err != nil {
			return fmt.Errorf("rep %d, app to a file: %w", rep, err)
		}
		k, err := measureSink(self)
		if err != nil {
			return fmt.Errorf("rep %d, app to a Go reader: %w", rep, err)
		}
		sinks = append(sinks, k)
		r, err := measureRunner(self, *lines, 1, 0)
		if err != nil {
			return fmt.Errorf("rep %d, under clusterrun: %w", rep, err)
		}
		fmt.Fprintf(os.Stderr, "rep %d: file %v; clusterrun %v (ratio %.2f), runner CPU %v, runner peak PSS %.1f MiB, output %.1f MB; Go reader %v, CPU %v\n",
			rep, ms(f.wall), ms(r.wall), secs(r.wall)/secs(f.wall), ms(r.cpu), mib(r.peakPSS), float64(r.outBytes)/1e6, ms(k.wall), ms(k.cpu))
		files = append(files, f)
		runners = append(runners, r)
	}

	fmt.Printf("\n%d runs each; min / median / max\n\n", *reps)
	fmt.Printf("| measure | min | median | max |\n|---|---|---|---|\n")
	row := func(name string, v []float64, format string) {
		lo, med, hi, _ := report.Summary(v)
		fmt.Printf("| %s | "+format+" | "+format+" | "+format+" |\n", name, lo, med, hi)
	}
	get := report.Values[sample]
	row("app → file: wall (s)", get(files, func(s sample) float64 { return secs(s.wall) }), "%.3f")
	row("app → clusterrun → file: wall (s)", get(runners, func(s sample) float64 { return secs(s.wall) }), "%.3f")
	ratios := make([]float64, len(runners))
	for i := range runners {
		ratios[i] = secs(runners[i].wall) / secs(files[i].wall)
	}
	row("ratio wall(clusterrun)/wall(file), per rep", ratios, "%.2f")
	row("runner CPU, utime+stime (s)", get(runners, func(s sample) float64 { return secs(s.cpu) }), "%.2f")
	row("runner peak PSS (MiB)", get(runners, func(s sample) float64 { return mib(s.peakPSS) }), "%.1f")
	row("reference: app → pipe → Go reader that discards: wall (s)", get(sinks, func(s sample) float64 { return secs(s.wall) }), "%.3f")
	row("reference: that Go reader's CPU (s)", get(sinks, func(s sample) float64 { return secs(s.cpu) }), "%.2f")
	fw := report.Median(get(files, func(s sample) float64 { return secs(s.wall) }))
	cw := report.Median(get(runners, func(s sample) float64 { return secs(s.wall) }))
	fmt.Printf("\nratio of medians wall(clusterrun)/wall(file): %.2f\n", cw/fw)

	if *idle > 0 {
		s, err := measureRunner(self, 1000, *idle, time.Second)
		if err != nil {
			return fmt.Errorf("idle PSS: %w", err)
		}
		fmt.Printf("runner PSS with %d instances that printed 1000 lines each, then idle for 1s: %.1f MiB (peak %.1f MiB)\n", *idle, mib(s.pss), mib(s.peakPSS))
	}
	return nil
}

func header() {
	fmt.Printf("# clusterrun log path: %d lines of %d bytes from one app\n\n", *lines, lineLen)
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
	if *label != "" {
		fmt.Printf("source:  %s\n", *label)
	}
	fmt.Printf("date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: %d CPUs (nproc), %s\n", runtime.NumCPU(), report.CPUModel())
	fmt.Printf("kernel:  %s\n", strings.TrimSpace(readString("/proc/sys/kernel/osrelease")))
	fmt.Printf("go:      %s\n", runtime.Version())
	w := "one write(2) per line"
	if *chunk > 0 {
		w = fmt.Sprintf("writes of %d bytes", *chunk)
	}
	fmt.Printf("app:     %s spam -lines %d (%s), then sleeps\n", filepath.Base(os.Args[0]), *lines, w)
	fmt.Printf("runner:  clusterrun up -f cluster.hcl --color never > file; CPU is utime+stime of the runner pid at the last line\n")
	// The runner reads it to size the instance pipes (0: the kernel's
	// default); an A/B of pipe sizes is told apart by this line.
	if v, ok := os.LookupEnv("CLUSTERRUN_PIPE_SIZE"); ok {
		fmt.Printf("pipes:   CLUSTERRUN_PIPE_SIZE=%s\n", v)
	} else {
		fmt.Printf("pipes:   the runner's default (256 KiB within its budget)\n")
	}
}

// measureFile runs the app with its stdout on a file.
func measureFile(self string) (sample, error) {
	path := filepath.Join(*work, "direct.out")
	defer os.Remove(path)
	out, err := os.Create(path)
	if err != nil {
		return sample{}, err
	}
	defer out.Close()
	cmd := exec.Command(self, spamArgs(*lines)...)
	cmd.Stdout = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer stop(cmd, 0)
	if err := waitForLast(path, *lines, 0, start, nil); err != nil {
		return sample{}, err
	}
	s := sample{wall: time.Since(start)}
	if fi, err := os.Stat(path); err == nil {
		s.outBytes = fi.Size()
	}
	return s, nil
}

// measureSink runs the app with its stdout on a pipe to `logpath sink`: what
// reading the pipe costs before any formatting or writing.
func measureSink(self string) (sample, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	app := exec.Command(self, spamArgs(*lines)...)
	app.Stdout = w
	app.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	reader := exec.Command(self, "sink", "-bytes", strconv.Itoa(*lines*lineLen))
	reader.Stdin = r
	report, err := reader.StdoutPipe()
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	if err := reader.Start(); err != nil {
		return sample{}, err
	}
	r.Close()
	defer stop(reader, 10*time.Second)
	if err := app.Start(); err != nil {
		return sample{}, err
	}
	w.Close()
	defer stop(app, 0)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(report).ReadString('\n')
		line <- l
	}()
	var got string
	select {
	case got = <-line:
	case <-time.After(*timeout):
		return sample{}, fmt.Errorf("no report from the reader after %v", *timeout)
	}
	s := sample{wall: time.Since(start)}
	ns, err := strconv.ParseInt(strings.TrimSpace(got), 10, 64)
	if err != nil {
		return sample{}, fmt.Errorf("reader reported %q", got)
	}
	s.cpu = time.Duration(ns)
	return s, nil
}

// measureRunner runs the app as instances instances under clusterrun, each
// printing n lines, and waits for all of them, then for settle.
func measureRunner(self string, n, instances int, settle time.Duration) (sample, error) {
	dir, err := os.MkdirTemp(*work, "run-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(dir)
	var quoted []string
	for _, a := range append([]string{self}, spamArgs(n)...) {
		quoted = append(quoted, strconv.Quote(a))
	}
	cfg := filepath.Join(dir, "cluster.hcl")
	hcl := fmt.Sprintf("app \"spam\" {\n  command   = [%s]\n  instances = %d\n  restart { policy = \"never\" }\n}\n",
		strings.Join(quoted, ", "), instances)
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		return sample{}, err
	}
	path := filepath.Join(dir, "runner.out")
	out, err := os.Create(path)
	if err != nil {
		return sample{}, err
	}
	defer out.Close()
	cmd := exec.Command(*clusterrun, "up", "-f", cfg, "--color", "never")
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer stop(cmd, 30*time.Second)
	pid := cmd.Process.Pid
	var peak int64
	samplePSS := func() { peak = max(peak, report.Memory(pid).PSS) }
	if err := waitForLast(path, n, instances, start, samplePSS); err != nil {
		return sample{}, err
	}
	s := sample{wall: time.Since(start)}
	cpu, err := cpuTime(pid)
	if err != nil {
		return sample{}, err
	}
	s.cpu = cpu
	samplePSS()
	if settle > 0 {
		time.Sleep(settle)
	}
	s.pss = report.Memory(pid).PSS
	s.peakPSS = max(peak, s.pss)
	if fi, err := os.Stat(path); err == nil {
		s.outBytes = fi.Size()
	}
	return s, nil
}

func spamArgs(n int) []string {
	return []string{"spam", "-lines", strconv.Itoa(n), "-chunk", strconv.Itoa(*chunk)}
}

// waitForLast polls path until it holds line n-1 of the app (of every
// instance, when instances > 0: under the runner the lines are prefixed
// "spam.N"). It stats the file every millisecond and reads only its tail
// once it is big enough, so that the probe costs the machine little. tick
// runs about every 10 ms.
func waitForLast(path string, n, instances int, start time.Time, tick func()) error {
	last := appendSeq([]byte("seq="), n-1)
	minSize := int64(n) * lineLen * int64(max(instances, 1))
	seen := map[int]bool{}
	deadline := start.Add(*timeout)
	var checked int64
	tail := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("line %d not in %s after %v", n-1, path, *timeout)
		}
		if tick != nil && i%10 == 0 {
			tick()
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if size := fi.Size(); size >= minSize && size != checked {
			checked = size
			if done, err := hasLast(path, size, tail, last, instances, seen); err != nil || done {
				return err
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// hasLast reads the file's tail and reports whether every instance's last
// line is there. The last lines of 8 instances can be far apart in a big
// output, so with several instances the whole file is scanned (those runs
// print little).
func hasLast(path string, size int64, tail, last []byte, instances int, seen map[int]bool) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if instances <= 1 {
		off := max(size-int64(len(tail)), 0)
		k, err := f.ReadAt(tail, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		return bytes.Contains(tail[:k], last), nil
	}
	all, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	for _, l := range bytes.Split(all, []byte{'\n'}) {
		label, rest, ok := bytes.Cut(l, []byte{' '})
		if !ok || !bytes.Contains(rest, last) {
			continue
		}
		if inst, err := strconv.Atoi(strings.TrimPrefix(string(label), "spam.")); err == nil {
			seen[inst] = true
		}
	}
	return len(seen) == instances, nil
}

// stop ends a measured process: SIGTERM, then after grace SIGKILL to its
// process group. The runner passes SIGTERM on to the app.
func stop(cmd *exec.Cmd, grace time.Duration) {
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "pid %d did not exit after SIGKILL\n", cmd.Process.Pid)
	}
}

// cpuTime returns utime+stime of pid (fields 14 and 15 of /proc/PID/stat,
// after the parenthesized command name).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * time.Second / time.Duration(*clkTck), nil
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func secs(d time.Duration) float64 { return d.Seconds() }
func mib(b int64) float64          { return float64(b) / (1 << 20) }
func ms(d time.Duration) string    { return d.Round(time.Millisecond).String() }
