package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// shimArg is the hidden first argument that makes a benchmark binary act as
// an exec shim (see MaybeShim).
const shimArg = "__bench_exec"

// MaybeShim must be the first call in main. When the binary was started as
// `BINARY __bench_exec PROGRAM ARGS...` it sets LISTEN_PID to its own pid and
// execs PROGRAM: a pid survives execve, and the parent cannot know the pid
// before the fork, so this is how LISTEN_PID == getpid() holds in the
// program. It is clusterrun's own shim trick, kept here so that the "no
// runner" limit does not depend on the clusterrun binary. It returns only
// when the binary was not started as the shim.
func MaybeShim() {
	if len(os.Args) < 3 || os.Args[1] != shimArg {
		return
	}
	path, err := exec.LookPath(os.Args[2])
	if err == nil {
		env := os.Environ()
		out := env[:0]
		for _, kv := range env {
			if !strings.HasPrefix(kv, "LISTEN_PID=") {
				out = append(out, kv)
			}
		}
		out = append(out, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
		err = syscall.Exec(path, os.Args[2:], out)
	}
	fmt.Fprintf(os.Stderr, "bench exec shim: cannot exec %s: %v\n", os.Args[2], err)
	os.Exit(127)
}
