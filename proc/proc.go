// Package proc starts child processes in their own process groups and owns
// all waiting for them.
//
// The runner may be PID 1 or a child subreaper, so orphans are reparented to
// it and it must reap them; a Wait4(-1) loop would steal the exit statuses
// that os/exec's Cmd.Wait expects. So nothing in the runner uses os/exec:
// processes are started with syscall.ForkExec and exactly one goroutine, the
// Reaper's, waits for every child and dispatches statuses by pid.
package proc

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/clusterrun/clusterrun/signals"
)

// Status is how a process ended.
type Status struct {
	// Code is the exit status when Signal is 0.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
}

// Success reports whether the process exited with status 0.
func (s Status) Success() bool { return s.Signal == 0 && s.Code == 0 }

// String says how the process ended, in words fit for a log line:
// "exited with status 3" or "was killed by SIGKILL".
func (s Status) String() string {
	if s.Signal != 0 {
		return "was killed by " + signals.Name(s.Signal)
	}
	return fmt.Sprintf("exited with status %d", s.Code)
}

func statusOf(ws syscall.WaitStatus) Status {
	if ws.Signaled() {
		return Status{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return Status{Code: ws.ExitStatus()}
}

// Spec describes a process to start.
type Spec struct {
	// Path is the program to execute (already looked up, see LookPath).
	Path string
	// Args is argv, including argv[0].
	Args []string
	Dir  string
	Env  []string
	// Files become the child's fds 0, 1, 2, 3, ... They are raw descriptors
	// because os.File.Fd would flip a shared listening socket back to
	// blocking mode on every start; the caller keeps them open until Start
	// returns.
	Files []uintptr
	// Credential, when set, is the user and group the child runs as.
	Credential *syscall.Credential
	// KeepOnParentDeath leaves out the parent-death signal (the guard must
	// outlive the runner).
	KeepOnParentDeath bool
}

// Reaper starts processes and is the only waiter for every child of this
// process, including orphans reparented to it.
type Reaper struct {
	// mu is held across fork and registration, and around dispatch, so a
	// child that exits before Start registers it is still found.
	mu      sync.Mutex
	waiting map[int]chan Status
	sigs    chan os.Signal
	done    chan struct{}
	exited  chan struct{}
	// orphans counts reaped processes nobody registered (reparented orphans).
	orphans int
}

// NewReaper makes this process a child subreaper (on Linux) and starts the
// reaping goroutine. Only one Reaper may exist per process; Close stops it.
func NewReaper() (*Reaper, error) {
	if err := becomeSubreaper(); err != nil {
		return nil, fmt.Errorf("cannot become a child subreaper: %w", err)
	}
	r := &Reaper{
		waiting: make(map[int]chan Status),
		sigs:    make(chan os.Signal, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.run()
	return r, nil
}

// Start starts spec in a new process group whose id is the returned pid.
// The channel receives the process's status once it has been reaped; by
// then every other member of its group has been sent SIGKILL, so that no
// leftover keeps a port or a pipe (systemd's KillMode=control-group).
func (r *Reaper) Start(spec Spec) (pid int, exited <-chan Status, err error) {
	ch := make(chan Status, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err = syscall.ForkExec(spec.Path, spec.Args, spec.attr())
	if err != nil {
		return 0, nil, err
	}
	r.waiting[pid] = ch
	return pid, ch, nil
}

// StartOne starts spec as Reaper.Start does, in a process that has no
// Reaper (a command of the CLI): the status comes from waiting for this
// pid alone, which takes nothing from anyone where nobody else waits.
func StartOne(spec Spec) (pid int, exited <-chan Status, err error) {
	pid, err = syscall.ForkExec(spec.Path, spec.Args, spec.attr())
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan Status, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err != syscall.EINTR {
				break
			}
		}
		ch <- statusOf(ws)
	}()
	return pid, ch, nil
}

func (spec Spec) attr() *syscall.ProcAttr {
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   spec.Env,
		Files: spec.Files,
		Sys:   sysProcAttr(),
	}
	attr.Sys.Credential = spec.Credential
	if spec.KeepOnParentDeath {
		noDeathSignal(attr.Sys)
	}
	return attr
}

// Orphans returns how many reparented orphans the reaper has reaped.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Close stops reaping. Processes still running are not touched.
func (r *Reaper) Close() {
	signal.Stop(r.sigs)
	close(r.done)
	<-r.exited
}

func (r *Reaper) run() {
	defer close(r.exited)
	for {
		r.reapAll()
		select {
		case <-r.done:
			return
		case <-r.sigs:
		}
	}
}

// reapAll collects every child that has exited. SIGCHLDs coalesce, so one
// signal may stand for many exits: loop until nothing is left.
func (r *Reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ch, ok := r.waiting[pid]
		delete(r.waiting, pid)
		if !ok {
			r.orphans++
		}
		r.mu.Unlock()
		if ok {
			// The pid is the group id; its members outlive the leader only
			// by escaping our control, so end them now, before the pid can
			// be reused.
			_ = KillGroup(pid, syscall.SIGKILL)
			ch <- statusOf(ws)
		}
	}
}

// KillGroup sends sig to every process in the group pgid. A group that no
// longer exists is not an error.
func KillGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pgid)
	}
	err := syscall.Kill(-pgid, sig)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}

// Running reports whether process pid is still running: false once it has
// exited, even before it is reaped (on Linux; elsewhere an unreaped exit
// still counts as running).
func Running(pid int) bool { return pid > 0 && running(pid) }
