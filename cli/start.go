package cli

import (
	"github.com/spf13/cobra"
	"net/url"
)

func newStartCmd(*cobra.Command) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "start APP",
		Short: "Start an app that is stopped (or was not named to \"up\")",
		Long: `Start APP's instances: an app stopped with "clusterrun stop", or one left out
when "up" was given app names. It starts once the apps it depends on are
ready.

Exit status: 0 when it started, 1 when it could not or no runner is up,
2 when the runner has no app APP.`,
		Example:           `  clusterrun start worker`,
		GroupID:           groupControl,
		Args:              argCount(1, 1, "one APP"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return result(f.post(cmd.OutOrStdout(), cmd.ErrOrStderr(), "/v1/apps/"+url.PathEscape(args[0])+"/start", nil))
		},
	}
	f = addControlFlags(cmd)
	return cmd
}
