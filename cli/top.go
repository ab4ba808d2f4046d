package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/top"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

func newTopCmd(*cobra.Command) *cobra.Command {
	var file, addr, tokenFile *string
	cmd := &cobra.Command{
		Use:   "top",
		Short: "A live, full-screen view of the running cluster",
		Long: `Show the running cluster full-screen and live: a table of every instance
(app, instance, pid, release, state, role, restarts, last exit, uptime, CPU,
memory, and connections for proxy listeners), a trend of each app's CPU,
memory and restarts over the last 12 seconds, and a log pane that follows
the selected app or instance (pause it, search it with /).

Keys act on the selected app or instance: r reload, R restart, i restart
the instance, + and - scale by one, s stop, S start; the status line shows
what the runner answered. ? shows every key; q or Ctrl-C quits.

The view follows the runner's event stream. When the runner goes away, top
says so and waits for it to come back (q quits).

--addr watches a runner over TCP (its control block), with the token read
from --token-file.

Exit status: 0 after q, 1 when no runner is up or the terminal cannot be
used, 2 for bad flags.`,
		Example: `  clusterrun top
  clusterrun top -f examples/go-http/cluster.hcl
  clusterrun top --addr 10.0.0.5:7070 --token-file ~/.config/clusterrun/prod.token`,
		GroupID: groupControl,
		Args:    argCount(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if *addr != "" && *file != "" {
				return usageErrorf("give -f or --addr, not both")
			}
			if (*addr == "") != (*tokenFile == "") {
				return usageErrorf("--addr and --token-file go together")
			}
			return result(runTop(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *file, *addr, *tokenFile))
		},
	}
	file = fileFlag(cmd)
	addr = cmd.Flags().String("addr", "", "watch the runner whose API listens on `HOST:PORT` (a control block's address)")
	tokenFile = cmd.Flags().String("token-file", "", "read the bearer token for --addr from `FILE`")
	return cmd
}

func runTop(stdin io.Reader, stdout, stderr io.Writer, file, addr, tokenFile string) int {
	if f, ok := stdout.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		fmt.Fprintln(stderr, "clusterrun: top needs a terminal; use status or logs in scripts")
		return ExitFailure
	}
	var c *control.Client
	target := addr
	if addr != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "clusterrun: cannot read the token file: %v\n", err)
			return ExitFailure
		}
		c = control.DialTCP(addr, strings.TrimSpace(string(b)))
	} else {
		var code int
		if c, code = dialRunner(file, stderr); c == nil {
			return code
		}
		target = file
		if p, err := configFile(file); err == nil {
			target = p
		}
	}
	defer c.Close()
	// Fail before taking the screen when nobody answers.
	ctx, cancel := context.WithTimeout(context.Background(), lsTimeout)
	var hz struct{}
	_, err := c.Probe(ctx, "/healthz", &hz)
	cancel()
	if err != nil {
		return apiFailure(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := top.Run(ctx, c, target, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "clusterrun: top: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
