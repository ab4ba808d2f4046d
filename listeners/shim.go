package listeners

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ShimArg is the hidden first argument that makes the clusterrun binary act
// as the exec shim. main checks for it before anything else.
const ShimArg = "__clusterrun_exec"

// ShimArgs returns the argv that starts path (with argv) through the shim of
// the clusterrun binary exe.
func ShimArgs(exe, path string, argv []string) []string {
	return append([]string{exe, ShimArg, path}, argv...)
}

// ExecShim replaces the current process with args[0] (argv args[1:]) after
// setting LISTEN_PID to its own pid. The pid of a process survives execve,
// and the fork-time pid is not known to the parent before the fork, so this
// is the only way the systemd check LISTEN_PID == getpid() can hold in the
// program itself. It returns an exit status only when exec fails.
//
// It must stay tiny: no config, no goroutines, no output unless it fails.
func ExecShim(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "clusterrun: exec shim: missing program")
		return 127
	}
	env := os.Environ()
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LISTEN_PID=") {
			out = append(out, kv)
		}
	}
	out = append(out, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := syscall.Exec(args[0], args[1:], out)
	fmt.Fprintf(os.Stderr, "clusterrun: cannot exec %s: %v\n", args[0], err)
	return 127
}
