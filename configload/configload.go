// Package configload reads the config file for the CLI and the runner: in
// a child process of clusterrun's own binary (the hidden argument
// ChildArg, as the guard has its own), under resource limits, which hands
// the result back serialised. A parser that crashes, hangs or blows up
// then costs a clear "cannot read cluster.hcl: ..." (for a reload,
// "reload rejected: ...") and nothing else: the runner and its apps are
// untouched. Limits enumerated in advance (a token pre-scan, a cost model
// of expressions) stop only the attacks known today; a process boundary
// stops the next one too.
//
// The child parses and validates the file (package hclconfig), checks it
// against this machine (package preflight) unless told not to, renders
// the diagnostics and encodes the Config with encoding/gob, which keeps
// every Go value exactly, strings that are not UTF-8 included.
package configload

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
)

// ChildArg is the hidden first argument that makes the clusterrun binary
// the config reader; main checks for it before anything else.
const ChildArg = "__clusterrun_config"

// Limits bound the child. The defaults are far above what reading a real
// cluster.hcl takes (milliseconds, a few MiB; a 1 MiB file of 20,000 apps
// each with a mistake, under 2 s and a few hundred MiB) and below what
// would hurt a small machine.
type Limits struct {
	// Memory is the address space the child may grow by.
	Memory int64
	// CPU is the CPU time the child may use (whole seconds).
	CPU time.Duration
	// Wait is how long the child may take, more than CPU for a child
	// that blocks (an env file that is a pipe nobody writes).
	Wait time.Duration
	// Output bounds what the child hands back.
	Output int64
}

// DefaultLimits are the limits of a zero Options.Limits.
var DefaultLimits = Limits{Memory: 1 << 30, CPU: 20 * time.Second, Wait: 30 * time.Second, Output: 64 << 20}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.Memory > 0 {
		d.Memory = l.Memory
	}
	if l.CPU > 0 {
		d.CPU = l.CPU
	}
	if l.Wait > 0 {
		d.Wait = l.Wait
	}
	if l.Output > 0 {
		d.Output = l.Output
	}
	return d
}

// exitCPU is the child's exit status when it ran out of CPU time.
const exitCPU = 3

// Options say how to read the file and render its diagnostics.
type Options struct {
	// SkipMachine leaves out the checks against this machine (package
	// preflight): for a file to be exported, whose programs, directories
	// and accounts are on the machine it is exported to.
	SkipMachine bool
	// Width wraps the rendered diagnostics (0: no wrapping), Color
	// highlights them, ErrorsOnly leaves warnings out.
	Width      uint
	Color      bool
	ErrorsOnly bool
	// Reaper starts and waits for the child in a process that has one
	// (the runner, which must be the only waiter for its children). Nil:
	// the child is waited for directly.
	Reaper *proc.Reaper
	// Exe is clusterrun's own binary; "" is os.Executable().
	Exe string
	// Limits bound the child; zero fields take DefaultLimits.
	Limits Limits
}

// Result is what the child hands back.
type Result struct {
	// Config is nil when the file has errors.
	Config *hclconfig.Config
	// Diagnostics are rendered as hclconfig.WriteDiagnostics does, "" when
	// there is none.
	Diagnostics string
	// Errors and Warnings count the diagnostics.
	Errors, Warnings int
}

// Load reads the config file at path in a child process. The error is
// about the child, not the file (a file's mistakes are in the Result): it
// crashed, hung, or went over a limit, and it says which.
func Load(path string, o Options) (Result, error) {
	lim := o.Limits.orDefault()
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return Result{}, fmt.Errorf("cannot read %s: cannot find clusterrun's own binary to read it with: %w", path, err)
		}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return Result{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return Result{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer errR.Close()
	spec := proc.Spec{
		Path:  exe,
		Args:  append([]string{exe, ChildArg}, o.args(path, lim)...),
		Env:   childEnv(os.Environ()),
		Files: []uintptr{devnull.Fd(), outW.Fd(), errW.Fd()},
	}
	start := proc.StartOne
	if o.Reaper != nil {
		start = o.Reaper.Start
	}
	pid, exited, err := start(spec)
	outW.Close()
	errW.Close()
	if err != nil {
		return Result{}, fmt.Errorf("cannot read %s: cannot start clusterrun to read it: %w", path, err)
	}

	var (
		mu      sync.Mutex
		killed  string // why the parent killed the child
		stderr  head
		stderrC = make(chan struct{})
	)
	kill := func(why string) {
		mu.Lock()
		if killed == "" {
			killed = why
		}
		mu.Unlock()
		proc.KillGroup(pid, syscall.SIGKILL)
	}
	timer := time.AfterFunc(lim.Wait, func() {
		kill(fmt.Sprintf("it took longer than %s (an env file that is a pipe or a device blocks it, or the parser hangs)", lim.Wait))
	})
	defer timer.Stop()
	go func() { io.Copy(&stderr, errR); close(stderrC) }()
	out, err := io.ReadAll(io.LimitReader(outR, lim.Output+1))
	if err == nil && int64(len(out)) > lim.Output {
		kill(fmt.Sprintf("what it read is larger than the %d MiB a config may come to", lim.Output>>20))
		io.Copy(io.Discard, outR)
	}
	st := <-exited
	<-stderrC
	timer.Stop()

	mu.Lock()
	why := killed
	mu.Unlock()
	if why == "" && !st.Success() {
		why = childFailure(st, stderr.String(), lim)
	}
	if why != "" {
		return Result{}, fmt.Errorf("cannot read %s: the clusterrun process reading it was stopped: %s", path, why)
	}
	var res Result
	if err := gob.NewDecoder(bytes.NewReader(out)).Decode(&res); err != nil {
		return Result{}, fmt.Errorf("cannot read %s: the clusterrun process reading it handed back what cannot be decoded: %v", path, err)
	}
	return res, nil
}

// childFailure explains how the child ended, from its status and the end
// of what it wrote to stderr (the Go runtime's fatal error, if any).
func childFailure(st proc.Status, stderr string, lim Limits) string {
	first := func() string {
		for _, l := range strings.Split(stderr, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				return l
			}
		}
		return ""
	}
	switch {
	case st.Signal == 0 && st.Code == exitCPU:
		return fmt.Sprintf("it used more than %s of CPU time (an expression that computes too much, or a parser that loops)", lim.CPU)
	case strings.Contains(stderr, "out of memory"), strings.Contains(stderr, "cannot allocate memory"),
		// A binary built with -race (the tests') fails its address space
		// limit in the race runtime's words.
		strings.Contains(stderr, "ThreadSanitizer failed to allocate"), strings.Contains(stderr, "address space collisions for -race"):
		return fmt.Sprintf("it needed more than the %d MiB of memory it may use (a format() of many wide fields, a replace() or a value repeated until it is enormous)", lim.Memory>>20)
	case strings.Contains(stderr, "stack exceeds"), strings.Contains(stderr, "stack overflow"):
		return "its stack overflowed: an expression is nested or chained too deeply to read (such as thousands of operators in a row)"
	case st.Signal == syscall.SIGKILL:
		return "it was killed (SIGKILL), by the kernel's out-of-memory killer or by hand"
	case st.Signal != 0:
		return fmt.Sprintf("it %s", st)
	case first() != "":
		return fmt.Sprintf("it %s: %s", st, first())
	}
	return fmt.Sprintf("it %s", st)
}

// args are the child's arguments after ChildArg: the path, the width,
// the flags, the memory and CPU limits.
func (o Options) args(path string, lim Limits) []string {
	flags := ""
	if o.SkipMachine {
		flags += "s"
	}
	if o.Color {
		flags += "c"
	}
	if o.ErrorsOnly {
		flags += "e"
	}
	return []string{path, strconv.FormatUint(uint64(o.Width), 10), "-" + flags,
		strconv.FormatInt(lim.Memory, 10), strconv.FormatInt(int64(lim.CPU/time.Second), 10)}
}

// childEnv is the runner's environment less what describes the runner's
// own sockets (systemd's socket activation and notify socket): the child
// reads env.X of the runner's environment as the runner would, and has
// nothing to do with those.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// head keeps the first 8 KiB written to it: the start of a crash's
// output, where the runtime says why, without holding a whole trace.
type head struct{ b []byte }

const headSize = 8 << 10

func (h *head) Write(p []byte) (int, error) {
	if n := min(len(p), headSize-len(h.b)); n > 0 {
		h.b = append(h.b, p[:n]...)
	}
	return len(p), nil
}

func (h *head) String() string { return string(h.b) }

// errUsage is returned by the child for arguments it does not understand.
var errUsage = errors.New("usage: clusterrun " + ChildArg + " PATH WIDTH -FLAGS MEMORY CPU-SECONDS")
