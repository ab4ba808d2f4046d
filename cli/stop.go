package cli

import (
	"github.com/spf13/cobra"
	"net/url"
)

func newStopCmd(*cobra.Command) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "stop APP",
		Short: "Drain and stop one app, leaving the others running",
		Long: `Stop every instance of APP with its stop signal, then SIGKILL at its stop
timeout, without touching the other apps; its listeners stay open. The apps
that depend on it are not stopped. "clusterrun start APP" starts it again.

Exit status: 0 when it stopped, 1 when it was not running or no runner is
up, 2 when the runner has no app APP.`,
		Example: `  clusterrun stop worker
  clusterrun start worker`,
		GroupID:           groupControl,
		Args:              argCount(1, 1, "one APP"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return result(f.post(cmd.OutOrStdout(), cmd.ErrOrStderr(), "/v1/apps/"+url.PathEscape(args[0])+"/stop", nil))
		},
	}
	f = addControlFlags(cmd)
	return cmd
}
