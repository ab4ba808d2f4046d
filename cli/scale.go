package cli

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/clusterrun/clusterrun/control"
	"github.com/spf13/cobra"
)

func newScaleCmd(*cobra.Command) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "scale APP N|+N|-N",
		Short: "Change an app's instance count while it runs",
		Long: `Set APP's instance count to N, or add (+N) or remove (-N) instances, while it
runs. New instances start on the same sockets; removed ones (the highest
numbers) drain with the app's stop signal and timeout. The count stays
within 1..4096; anything else is refused. A reload keeps the new count
unless the count the file (or up's -m) gives the app changed since the last
accepted load, as kubectl apply does; status shows where each count came
from.

-N is a number, not a flag: "clusterrun scale web -1" removes one instance.

Exit status: 0 when the count was changed, 1 when it was refused or no
runner is up, 2 when N is not a number or the runner has no app APP.`,
		Example: `  clusterrun scale web 8
  clusterrun scale web +2
  clusterrun scale web -1
  kill -TTIN <runner pid>                 # one more of every app with listeners`,
		GroupID:           groupControl,
		Args:              argCount(2, 2, "two arguments, APP and N, +N or -N"),
		ValidArgsFunction: completeApps(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := scaleRequest(args[1])
			if err != nil {
				return err
			}
			return result(f.post(cmd.OutOrStdout(), cmd.ErrOrStderr(), "/v1/apps/"+url.PathEscape(args[0])+"/scale", req))
		},
	}
	f = addControlFlags(cmd)
	return cmd
}

// scaleRequest reads N, +N or -N.
func scaleRequest(spec string) (control.ScaleRequest, error) {
	n, err := strconv.Atoi(spec)
	if err != nil {
		return control.ScaleRequest{}, usageErrorf("scale takes N, +N or -N, not %q", spec)
	}
	if strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-") {
		return control.ScaleRequest{Delta: &n}, nil
	}
	return control.ScaleRequest{Instances: &n}, nil
}
