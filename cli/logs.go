package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/spf13/cobra"
)

// logsOptions are the flags of logs.
type logsOptions struct {
	file       *string
	lines      *int
	noFollow   *bool
	timestamps *bool
	logFormat  *enumValue
	colors     *enumValue
}

func newLogsCmd(*cobra.Command) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs [APP]",
		Short: "Print recent output, then follow the live stream",
		Long: `Print the last N lines of output of every app (or of APP) from the running
cluster's bounded in-memory history, then follow the live stream until
Ctrl-C or the runner stops. A client that stops reading loses lines; it
never slows the runner or the apps.

Exit status: 0, 1 when no runner is up for the file (or it refused the
stream: too many followers), 2 when the runner has no app APP.`,
		Example: `  clusterrun logs
  clusterrun logs web -n 200
  clusterrun logs --no-follow -n 1000 > recent.log
  clusterrun logs --log-format json | jq -r 'select(.stream == "stderr") | .line'`,
		GroupID:           groupControl,
		Args:              argCount(0, 1, "at most one APP"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := ""
			if len(args) == 1 {
				app = args[0]
			}
			if *o.lines < 0 {
				return usageErrorf("-n must be 0 or more, not %d", *o.lines)
			}
			return result(o.follow(cmd.OutOrStdout(), cmd.ErrOrStderr(), app))
		},
	}
	o.file = fileFlag(cmd)
	o.lines = cmd.Flags().IntP("lines", "n", 50, "print the last `N` lines of history first")
	o.noFollow = cmd.Flags().Bool("no-follow", false, "print the history and exit")
	o.timestamps = cmd.Flags().Bool("timestamps", false, "prefix every line with the time")
	o.logFormat = enumFlag(cmd, "log-format", "output format: text, or json (one object per line: time, app, instance, pid, stream, line)", "text", "json")
	o.colors = colorFlag(cmd)
	return cmd
}

// follow prints the runner's log lines until it or the user stops.
func (o logsOptions) follow(stdout, stderr io.Writer, app string) int {
	f := &logmux.Formatter{Timestamps: *o.timestamps, Color: colorMode(o.colors.value, stdout), Width: len("clusterrun")}
	if o.logFormat.value == "json" {
		f.Format = logmux.JSON
	}
	c, code := dialRunner(*o.file, stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var buf []byte
	err := c.Logs(ctx, control.LogsQuery{App: app, Lines: *o.lines, Follow: !*o.noFollow}, func(rec logmux.Record) error {
		buf = f.Append(buf[:0], &rec)
		_, err := stdout.Write(buf)
		return err
	})
	if errors.Is(err, context.Canceled) {
		return ExitOK
	}
	return apiFailure(stderr, err)
}
