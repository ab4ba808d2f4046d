package cli

import (
	"github.com/spf13/cobra"
	"net/url"
)

func newReloadCmd(*cobra.Command) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "reload [APP]",
		Short: "Re-read the file and roll every app (or one) over, zero-downtime",
		Long: `Re-read the config file and apply it, as SIGHUP to the runner does: new apps
start, removed apps drain, and every app (or only APP) is replaced one
instance at a time: a new instance starts, the runner waits until it is
ready, then stops an old one. If the file is invalid, or a new instance
crashes or is not ready in time, that rollout is aborted and the old
instances keep serving.

It waits for the outcome of this reload and says what happened to each app.

Exit status: 0 when the reload was applied, 1 when it was refused or
aborted, or no runner is up, 2 when the runner has no app APP.`,
		Example: `  clusterrun reload
  clusterrun reload web
  kill -HUP <runner pid>                  # the same, by signal`,
		GroupID:           groupControl,
		Args:              argCount(0, 1, "at most one APP"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/reload"
			if len(args) == 1 {
				path = "/v1/apps/" + url.PathEscape(args[0]) + "/reload"
			}
			return result(f.post(cmd.OutOrStdout(), cmd.ErrOrStderr(), path, nil))
		},
	}
	f = addControlFlags(cmd)
	return cmd
}
