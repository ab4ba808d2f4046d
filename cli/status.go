package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
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
		colors *enumValue
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
its guard process together. A line per app follows: its state, its
instance count and where the count came from (the file, up -m, or scale,
which a reload keeps unless the file's count changed), its release, and how
its last reload, restart or rollback ended. Crashes, give-ups and aborted
rollouts are red (--color, as for up).

Columns:
  REL        the release the instance runs; each app counts its own from 1,
             and every reload the runner accepts makes the next
  STATE      of a process: spawning, starting (not ready yet), ready, dying
             (it announced STOPPING=1), quiescing (taken out of routing,
             waiting for its proxied connections before its stop signal),
             stopping, killing; of an instance number without a process:
             backoff (crashed, restarting soon), failed (gave up), done (a
             one-shot step that exited 0), stopped. "(crash loop)": it
             crashed recently and has not stayed up min_uptime since
  ROLE       serving (the instance's process), replacement (starting beside
             it for a reload, a restart or a repair), draining (replaced or
             stopped, finishing its work), "-" for an instance number
             without a process
  LAST EXIT  how the last process that served this instance number ended
             (a replacement that failed before it was ready is not counted:
             the app's line says how its rollout ended)
App states: waiting, starting, ready, reloading, restarting, rolling-back,
crashloop, failed, done, stopping, stopped, removing.

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
			return result(showStatus(cmd.OutOrStdout(), cmd.ErrOrStderr(), *file, *asJSON, colorMode(colors.value, cmd.OutOrStdout())))
		},
	}
	file = fileFlag(cmd)
	asJSON = cmd.Flags().Bool("json", false, "print JSON")
	check = cmd.Flags().Bool("check", false, "print whether the runner is ready, in one line; exit 0 when it is, 1 when not")
	colors = colorFlag(cmd)
	cmd.MarkFlagsMutuallyExclusive("json", "check")
	return cmd
}

// showStatus prints the running runner's apps and processes.
func showStatus(stdout, stderr io.Writer, file string, asJSON, colors bool) int {
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
	printStatus(stdout, &st, colors)
	return ExitOK
}

// red is what starts and ends a line that says something went wrong
// (a crash, an aborted rollout, a give-up), when colors are on.
const red, plain = "\x1b[31m", "\x1b[0m"

func printStatus(w io.Writer, st *status.Runner, colors bool) {
	now := time.Now()
	fmt.Fprintf(w, "runner pid %d, %s, %s", st.PID, st.Config, st.Phase)
	if !st.Started.IsZero() {
		fmt.Fprintf(w, ", up %s", roundAge(now.Sub(st.Started)))
	}
	if st.PSSBytes >= 0 {
		fmt.Fprintf(w, "; runner + guard PSS %s, USS %s", mib(st.PSSBytes), mib(st.USSBytes))
	}
	fmt.Fprintln(w)
	if len(st.Listeners) > 0 {
		var b bytes.Buffer
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nLISTENER\tADDRESS\tMODE")
		for _, l := range st.Listeners {
			mode := l.Mode
			if l.Balance != "" {
				mode += " (" + l.Balance + ")"
			}
			if l.Mode == "proxy" {
				mode += fmt.Sprintf(", %d of %d connections", l.Conns, l.MaxConns)
				if l.Queued > 0 {
					mode += fmt.Sprintf(", %d waiting for an instance", l.Queued)
				}
				if l.QueueTimeouts > 0 {
					mode += fmt.Sprintf(", %d closed after queue_timeout", l.QueueTimeouts)
				}
			}
			if l.Mode == "http" {
				mode += fmt.Sprintf(", %d connections", l.Conns)
				if l.Queued > 0 {
					mode += fmt.Sprintf(", %d requests waiting for an instance", l.Queued)
				}
				if l.QueueTimeouts > 0 {
					mode += fmt.Sprintf(", %d answered 503 after queue_timeout", l.QueueTimeouts)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.Address, mode)
		}
		tw.Flush()
		w.Write(b.Bytes())
	}
	// The table is laid out without colors (escape codes would count as
	// width), then the rows that say something went wrong are colored.
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	bad := []bool{false, false} // the blank line and the heading
	// Apps behind an http listener show their last minute: requests per
	// second, median and 99th percentile.
	withHTTP := st.HasHTTP()
	heading := "\nAPP\tINST\tPID\tREL\tSTATE\tROLE\tRESTARTS\tLAST EXIT\tUPTIME\tCPU\tPSS\tUSS"
	if withHTTP {
		heading += "\tREQ/S\tP50\tP99"
	}
	fmt.Fprintln(tw, heading)
	for _, a := range st.Apps {
		if len(a.Procs) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t%d\t%s\t-\t-\t-\t-\t-\t-\t-\n", a.Name, a.Release, a.State)
			bad = append(bad, a.State == "failed")
		}
		for _, p := range a.Procs {
			pid, up, cpu, pss, uss, role, last := "-", "-", "-", "-", "-", p.Role, "-"
			state := p.State
			if p.CrashLoop {
				state += " (crash loop)"
			}
			if p.Hung {
				state += " (hung: no new connections)"
			}
			if p.Waiting > 0 && p.OldestWait >= time.Second {
				// Worth a look: a request that long without a byte back.
				state += fmt.Sprintf(" (%d waiting, oldest %s)", p.Waiting, roundAge(p.OldestWait))
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
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s", a.Name, p.Instance, pid, p.Release, state, role, p.Restarts, last, up, cpu, pss, uss)
			if withHTTP {
				fmt.Fprintf(tw, "\t%s", httpColumns(p.HTTP))
			}
			fmt.Fprintln(tw)
			bad = append(bad, p.CrashLoop || p.Hung || p.State == "failed" || p.State == "backoff")
		}
	}
	tw.Flush()
	for i, line := range strings.SplitAfter(b.String(), "\n") {
		if colors && i < len(bad) && bad[i] {
			line = red + strings.TrimSuffix(line, "\n") + plain + "\n"
		}
		io.WriteString(w, line)
	}
	// One line per app: its count and where it came from, its release,
	// and how its last reload, restart or rollback ended.
	fmt.Fprintln(w)
	width := 0
	for _, a := range st.Apps {
		width = max(width, len(a.Name))
	}
	for _, a := range st.Apps {
		line, wrong := appLine(a, now)
		line = fmt.Sprintf("%-*s  %s", width+1, a.Name+":", line)
		if colors && wrong {
			line = red + line + plain
		}
		fmt.Fprintln(w, line)
	}
}

// appLine describes an app in one line, and says whether it tells of
// something that went wrong (a give-up, a crash loop, an aborted rollout).
func appLine(a status.App, now time.Time) (string, bool) {
	from := map[string]string{status.CountFile: "the file", status.CountFormation: "up -m", status.CountScale: "scale"}[a.InstancesFrom]
	if from == "" {
		from = a.InstancesFrom
	}
	noun := "instances"
	if a.Instances == 1 {
		noun = "instance"
	}
	line := fmt.Sprintf("%s, %d %s (count from %s), release %d", a.State, a.Instances, noun, from, a.Release)
	wrong := a.State == "failed" || a.State == "crashloop"
	if r := a.LastRollout; r != nil {
		line += fmt.Sprintf("; last %s %s %s ago", r.Kind, r.Outcome, roundAge(now.Sub(r.At)))
		if r.Why != "" {
			line += ": " + r.Why
		} else {
			line += fmt.Sprintf(" (%d of %d replaced, release %d)", r.Replaced, r.Total, r.Release)
		}
		wrong = wrong || r.Outcome == status.ReloadAborted
	}
	return line, wrong
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

// httpColumns are an instance's REQ/S, P50 and P99 over the last minute.
func httpColumns(h *status.HTTPRecent) string {
	rate, p50, p99 := h.Columns()
	return rate + "\t" + p50 + "\t" + p99
}
