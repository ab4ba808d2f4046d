// Command clusterrun runs N instances of every app in cluster.hcl on shared
// listening sockets, in the foreground: pm2's cluster mode for any language.
package main

import (
	"io"
	"os"

	"github.com/clusterrun/clusterrun/cli"
	"github.com/clusterrun/clusterrun/listeners"
)

func main() {
	// The exec shim runs before anything else: it only sets LISTEN_PID and
	// execs the instance's program.
	if len(os.Args) > 1 && os.Args[1] == listeners.ShimArg {
		os.Exit(listeners.ExecShim(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		cli.Usage(stderr)
		return cli.ExitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return cli.Up(rest, stdout, stderr)
	case "check":
		return cli.Check(rest, stdout, stderr)
	case "status", "ps":
		return cli.Status(rest, stdout, stderr)
	case "reload", "restart", "scale", "stop", "start":
		return cli.Control(cmd, rest, stdout, stderr)
	case "logs":
		return cli.Logs(rest, stdout, stderr)
	case "help", "-h", "--help":
		cli.Usage(stdout)
		return cli.ExitOK
	case "version", "--version":
		return cli.Version(stdout)
	}
	cli.Usagef(stderr, "unknown command %q", cmd)
	return cli.ExitUsage
}
