package cli

import (
	"strconv"
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
failed or no runner is up.`,
		Example: `  clusterrun restart web
  clusterrun restart web.2                # instance 2 only`,
		GroupID:           groupControl,
		Args:              argCount(1, 1, "one argument, APP or APP.N"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := control.Request{Cmd: "restart", App: args[0], Instance: -1}
			if app, n, ok := strings.Cut(req.App, "."); ok {
				i, err := strconv.Atoi(n)
				if err != nil || i < 0 || app == "" {
					return usageErrorf("restart takes APP or APP.N, not %q", req.App)
				}
				req.App, req.Instance = app, i
			}
			return result(f.send(cmd.OutOrStdout(), cmd.ErrOrStderr(), req))
		},
	}
	f = addControlFlags(cmd)
	return cmd
}
