package cli

import (
	"net/url"
	"strings"

	"github.com/clusterrun/clusterrun/control"
	"github.com/spf13/cobra"
)

func newRestartCmd(*cobra.Command) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "restart APP[.N]",
		Short: "Replace an app's instances, or one instance",
		Long: `Replace every instance of APP, or only instance N of it, the way a reload
does (a new instance is ready before the old one stops), without re-reading
the config file.

Exit status: 0 when the instances were replaced, 1 when the replacement
failed or no runner is up, 2 when the runner has no app APP.`,
		Example: `  clusterrun restart web
  clusterrun restart web.2                # instance 2 only`,
		GroupID:           groupControl,
		Args:              argCount(1, 1, "one argument, APP or APP.N"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/apps/" + url.PathEscape(args[0]) + "/restart"
			if strings.Contains(args[0], ".") {
				if _, _, err := control.ParseInstance(args[0]); err != nil {
					return usageErrorf("restart takes APP or APP.N, not %q", args[0])
				}
				path = "/v1/instances/" + url.PathEscape(args[0]) + "/restart"
			}
			return result(f.post(cmd.OutOrStdout(), cmd.ErrOrStderr(), path, nil))
		},
	}
	f = addControlFlags(cmd)
	return cmd
}
