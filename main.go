// Command clusterrun runs N instances of every app in cluster.hcl on shared
// listening sockets, in the foreground: pm2's cluster mode for any language.
package main

import (
	"io"
	"os"

	"github.com/clusterrun/clusterrun/cli"
	"github.com/clusterrun/clusterrun/configload"
	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/proc"
)

func main() {
	if code, ok := hidden(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// hidden runs the processes clusterrun starts of its own binary, before
// anything else, cobra included: the exec shim, which only sets
// LISTEN_PID and execs the instance's program; the guard, which kills the
// instances if the runner is killed; and the config reader, which parses
// the file where a parser failure cannot hurt the runner. ok is false for
// any other command line.
func hidden(args []string) (code int, ok bool) {
	if len(args) < 2 {
		return 0, false
	}
	switch args[1] {
	case listeners.ShimArg:
		return listeners.ExecShim(args[2:]), true
	case proc.GuardArg:
		return proc.RunGuard(args[2:]), true
	case configload.ChildArg:
		return configload.RunChild(args[2:]), true
	}
	return 0, false
}

// run runs a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return cli.Run(args, stdout, stderr)
}
