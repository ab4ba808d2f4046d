package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/status"
	"github.com/spf13/cobra"
)

func newLsCmd(*cobra.Command) *cobra.Command {
	var asJSON, sockets *bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List every runner of this user, wherever it was started",
		Long: `List every "clusterrun up" this user runs: its config file, pid, phase,
apps, and how many instances are ready of how many wanted. A runner is found
by its control socket (under $XDG_RUNTIME_DIR/clusterrun, else
$TMPDIR/clusterrun-UID), so it works from any directory.

Control commands (status, logs, reload, ...) find the runner of the nearest
cluster.hcl (or -f FILE); outside any project they use the only runner that
is up, and list the runners when several are.

--sockets prints only the control sockets, one a line (for curl
--unix-socket); --json prints each runner's status.

Exit status: 0, also when none is up.`,
		Example: `  clusterrun ls
  curl -s --unix-socket "$(clusterrun ls --sockets | head -1)" http://localhost/v1/status`,
		GroupID: groupControl,
		Args:    argCount(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return result(listRunners(cmd.OutOrStdout(), cmd.ErrOrStderr(), *asJSON, *sockets))
		},
	}
	asJSON = cmd.Flags().Bool("json", false, "print JSON")
	sockets = cmd.Flags().Bool("sockets", false, "print the control sockets only")
	cmd.MarkFlagsMutuallyExclusive("json", "sockets")
	return cmd
}

// lsTimeout bounds the whole listing: a runner that does not answer by
// then is shown as not answering.
const lsTimeout = 5 * time.Second

func listRunners(stdout, stderr io.Writer, asJSON, sockets bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), lsTimeout)
	defer cancel()
	found, err := control.Runners(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot list runners: %v\n", err)
		return ExitFailure
	}
	switch {
	case sockets:
		for _, f := range found {
			fmt.Fprintln(stdout, f.Socket)
		}
	case asJSON:
		type entry struct {
			Socket string         `json:"socket"`
			Status *status.Runner `json:"status,omitempty"`
			Error  string         `json:"error,omitempty"`
		}
		out := []entry{}
		for _, f := range found {
			e := entry{Socket: f.Socket, Status: f.Status}
			if f.Err != nil {
				e.Error = f.Err.Error()
			}
			out = append(out, e)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	case len(found) == 0:
		fmt.Fprintln(stdout, "no runner is up for this user")
	default:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tPID\tPHASE\tAPPS\tREADY")
		for _, f := range found {
			if f.Status == nil {
				fmt.Fprintf(tw, "%s\t-\tnot answering\t-\t-\n", f.Socket)
				continue
			}
			st := f.Status
			ready, want := readyCount(st)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d/%d\n", st.Config, st.PID, st.Phase, len(st.Apps), ready, want)
		}
		tw.Flush()
	}
	return ExitOK
}

// readyCount counts the serving instances that are ready, and the
// instances the apps want.
func readyCount(st *status.Runner) (ready, want int) {
	for _, a := range st.Apps {
		want += a.Instances
		for _, p := range a.Procs {
			if p.Role == "serving" && p.State == "ready" {
				ready++
			}
		}
	}
	return ready, want
}
