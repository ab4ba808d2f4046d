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
	// The exec shim runs before anything else, cobra included: it only sets
	// LISTEN_PID and execs the instance's program.
	if len(os.Args) > 1 && os.Args[1] == listeners.ShimArg {
		os.Exit(listeners.ExecShim(os.Args[2:]))
	}
	// So does the guard, which kills the instances if the runner is killed,
	// and the config reader, which parses the file where a parser failure
	// cannot hurt the runner.
	if len(os.Args) > 1 && os.Args[1] == proc.GuardArg {
		os.Exit(proc.RunGuard(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == configload.ChildArg {
		os.Exit(configload.RunChild(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return cli.Run(args, stdout, stderr)
}
