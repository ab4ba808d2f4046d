package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/status"
	"github.com/spf13/cobra"
)

func newStatusCmd(*cobra.Command) *cobra.Command {
	var (
		file   *string
		asJSON *bool
		check  *bool
	)
	cmd := &cobra.Command{
		Use:     "status",
		Aliases: []string{"ps"},
		Short:   "Show the apps, instances and listeners of the running cluster",
		Long: `Show the running cluster of the config file: its listeners with their
addresses and modes, and for every app each instance's pid, release, state,
role, restarts, last exit, uptime, CPU, and memory as PSS and USS summed
over its whole process group: PSS counts each page split among the
processes that map it (so shared code counts once across instances), USS
only the pages no other process maps (what stopping it would free). The
first line gives the same two figures for clusterrun itself: the runner and
its guard process together.

--json prints the same as one JSON object, for scripts.

--check asks the runner whether it is ready (its /readyz: not draining, and
every app that should run has its instances ready) and prints one line, for
a Docker HEALTHCHECK or a script.

Exit status: 0, or 1 when no runner is up for the file; with --check, 0
when the runner is ready and 1 when it is not (or not up).`,
		Example: `  clusterrun status
  clusterrun ps -f examples/go-http/cluster.hcl
  clusterrun status --json | jq '.apps[] | {name, state}'
  clusterrun status --check               # HEALTHCHECK CMD ["clusterrun", "status", "--check"]`,
		GroupID: groupControl,
		Args:    argCount(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if *check {
				return result(checkReady(cmd.OutOrStdout(), cmd.ErrOrStderr(), *file))
			}
			return result(showStatus(cmd.OutOrStdout(), cmd.ErrOrStderr(), *file, *asJSON))
		},
	}
	file = fileFlag(cmd)
	asJSON = cmd.Flags().Bool("json", false, "print JSON")
	check = cmd.Flags().Bool("check", false, "print whether the runner is ready, in one line; exit 0 when it is, 1 when not")
	cmd.MarkFlagsMutuallyExclusive("json", "check")
	return cmd
}

// showStatus prints the running runner's apps and processes.
func showStatus(stdout, stderr io.Writer, file string, asJSON bool) int {
	c, code := dialRunner(file, stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st status.Runner
	if err := c.Get(ctx, "/v1/status", &st); err != nil {
		return apiFailure(stderr, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return ExitOK
	}
	printStatus(stdout, &st)
	return ExitOK
}

func printStatus(w io.Writer, st *status.Runner) {
	now := time.Now()
	fmt.Fprintf(w, "runner pid %d, %s, %s", st.PID, st.Config, st.Phase)
	if !st.Started.IsZero() {
		fmt.Fprintf(w, ", up %s", roundAge(now.Sub(st.Started)))
	}
	if st.PSSBytes >= 0 {
		fmt.Fprintf(w, "; runner + guard PSS %s, USS %s", mib(st.PSSBytes), mib(st.USSBytes))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(st.Listeners) > 0 {
		fmt.Fprintln(tw, "\nLISTENER\tADDRESS\tMODE")
		for _, l := range st.Listeners {
			mode := l.Mode
			if l.Balance != "" {
				mode += " (" + l.Balance + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.Address, mode)
		}
	}
	fmt.Fprintln(tw, "\nAPP\tINST\tPID\tREL\tSTATE\tROLE\tRESTARTS\tLAST EXIT\tUPTIME\tCPU\tPSS\tUSS")
	for _, a := range st.Apps {
		if len(a.Procs) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t%d\t%s\t-\t-\t-\t-\t-\t-\t-\n", a.Name, a.Release, a.State)
		}
		for _, p := range a.Procs {
			pid, up, cpu, pss, uss, role, last := "-", "-", "-", "-", "-", p.Role, "-"
			state := p.State
			if p.CrashLoop {
				state += " (crash loop)"
			}
			if role == "" {
				role = "-"
			}
			if p.PID != 0 {
				pid = strconv.Itoa(p.PID)
				up = roundAge(now.Sub(p.Started))
			}
			if p.CPUPercent >= 0 {
				cpu = fmt.Sprintf("%.1f%%", p.CPUPercent)
			}
			if p.PSSBytes >= 0 {
				pss, uss = mib(p.PSSBytes), mib(p.USSBytes)
			}
			if e := p.LastExit; e != nil {
				how := fmt.Sprintf("status %d", e.Code)
				if e.Signal != "" {
					how = e.Signal
				}
				last = fmt.Sprintf("%s, %s ago", how, roundAge(now.Sub(e.At)))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", a.Name, p.Instance, pid, p.Release, state, role, p.Restarts, last, up, cpu, pss, uss)
		}
	}
	tw.Flush()
}

// mib prints a byte count in MiB, as status shows memory.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// roundAge prints a duration to the second, as people read ages.
func roundAge(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	return d.Round(time.Second).String()
}
