// Package signals names the signals a user may write in cluster.hcl and
// turns the signals the runner receives into typed events.
//
// The runner never ignores a signal (SIG_IGN would be inherited by every
// instance across exec); it only ever asks to be notified.
package signals

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
)

// byName lists the signals a stop block or a forward may name. SIGCHLD and
// SIGURG are left out on purpose: the first belongs to the reaper and the
// second is used by the Go scheduler, so neither makes sense as a stop signal.
var byName = map[string]syscall.Signal{
	"SIGABRT":   syscall.SIGABRT,
	"SIGALRM":   syscall.SIGALRM,
	"SIGHUP":    syscall.SIGHUP,
	"SIGINT":    syscall.SIGINT,
	"SIGKILL":   syscall.SIGKILL,
	"SIGPIPE":   syscall.SIGPIPE,
	"SIGQUIT":   syscall.SIGQUIT,
	"SIGTERM":   syscall.SIGTERM,
	"SIGTTIN":   syscall.SIGTTIN,
	"SIGTTOU":   syscall.SIGTTOU,
	"SIGUSR1":   syscall.SIGUSR1,
	"SIGUSR2":   syscall.SIGUSR2,
	"SIGWINCH":  syscall.SIGWINCH,
	"SIGCONT":   syscall.SIGCONT,
	"SIGSTOP":   syscall.SIGSTOP,
	"SIGTSTP":   syscall.SIGTSTP,
	"SIGXCPU":   syscall.SIGXCPU,
	"SIGXFSZ":   syscall.SIGXFSZ,
	"SIGVTALRM": syscall.SIGVTALRM,
	"SIGPROF":   syscall.SIGPROF,
	"SIGTRAP":   syscall.SIGTRAP,
}

// Names is the sorted list of names Parse accepts (in their canonical form).
var Names = func() []string {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

// Parse returns the signal called name. It is case-insensitive and accepts
// the name with or without its "SIG" prefix ("term", "SIGTERM", "Term").
func Parse(name string) (syscall.Signal, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if s, ok := byName[n]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("unknown signal %q; valid signals are %s", name, strings.Join(Names, ", "))
}

// Name returns the canonical name of sig ("SIGTERM"), or "signal N" for a
// signal outside the table.
func Name(sig syscall.Signal) string {
	for n, s := range byName {
		if s == sig {
			return n
		}
	}
	return fmt.Sprintf("signal %d", int(sig))
}
