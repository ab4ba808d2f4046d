package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// Check validates the file; it prints a summary, or every diagnostic and
// exits 2.
func Check(args []string, stdout, stderr io.Writer) int {
	fs, file := newFlags("check", stderr)
	colorFlag := fs.String("color", "auto", "auto, always or never")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return ExitUsage
	}
	if len(rest) > 0 {
		Usagef(stderr, "check takes no arguments (got %q); use -f FILE", rest)
		return ExitUsage
	}
	errColor, err := colorMode(*colorFlag, stderr)
	if err != nil {
		Usagef(stderr, "%v", err)
		return ExitUsage
	}
	path, err := configFile(*file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	cfg := load(path, stderr, errColor)
	if cfg == nil {
		return ExitUsage
	}
	summarize(stdout, cfg)
	return ExitOK
}

func summarize(w io.Writer, cfg *hclconfig.Config) {
	kind := "cluster.hcl"
	if cfg.Procfile {
		kind = "Procfile"
	}
	fmt.Fprintf(w, "%s is valid (%s): %d apps, %d listeners\n", cfg.Path, kind, len(cfg.Apps), len(cfg.Listeners))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(cfg.Listeners) > 0 {
		fmt.Fprintln(tw, "\nLISTENER\tADDRESS\tMODE")
		for _, l := range cfg.Listeners {
			addr := l.Address
			if l.Network == "unix" {
				addr = "unix:" + addr
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, addr, l.Mode)
		}
	}
	fmt.Fprintln(tw, "\nAPP\tINSTANCES\tLISTENERS\tREADY\tRESTART\tCOMMAND")
	for _, a := range cfg.Apps {
		ls := strings.Join(a.Listeners, ",")
		if ls == "" {
			ls = "-"
		}
		cmd := strings.Join(a.Command, " ")
		if len(a.Command) == 3 && a.Command[0] == "/bin/sh" && a.Command[1] == "-c" {
			cmd = a.Command[2]
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", a.Name, a.Instances, ls, a.Ready.Check, a.Restart.Policy, cmd)
	}
	tw.Flush()
}
