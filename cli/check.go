package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/clusterrun/clusterrun/configload"
	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/spf13/cobra"
)

func newCheckCmd(*cobra.Command) *cobra.Command {
	var (
		file   *string
		colors *enumValue
		asJSON *bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the config file without running anything",
		Long: `Validate the config file and print a summary of its listeners and apps, or
every problem at once, each with file:line:col and the source line. Besides
the schema, it catches what would fail at start: a program not on PATH, a
missing dir, an unknown user, a unix socket directory that does not exist,
a port below 1024 without the privilege to bind it.

Exit status: 0 when the file is valid (warnings are printed), 2 when it is
not.`,
		Example: `  clusterrun check
  clusterrun check -f deploy/cluster.hcl
  clusterrun check -f Procfile`,
		GroupID: groupRun,
		Args:    argCount(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return result(check(cmd.OutOrStdout(), cmd.ErrOrStderr(), *file, colors.value, *asJSON))
		},
	}
	file = fileFlag(cmd)
	colors = colorFlag(cmd)
	asJSON = cmd.Flags().Bool("json", false, "print the summary as JSON (diagnostics still go to stderr)")
	return cmd
}

// check validates the file; it prints a summary, or every diagnostic and
// returns 2.
func check(stdout, stderr io.Writer, file, colors string, asJSON bool) int {
	path, err := configFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	cfg := load(path, stderr, configload.Options{Width: termWidth(stderr), Color: colorMode(colors, stderr)})
	if cfg == nil {
		return ExitUsage
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(checkSummary(cfg))
		return ExitOK
	}
	summarize(stdout, cfg)
	return ExitOK
}

// checkJSON is what check --json prints: the table's columns.
type checkJSON struct {
	Config    string          `json:"config"`
	Kind      string          `json:"kind"`
	Listeners []checkListener `json:"listeners"`
	Apps      []checkApp      `json:"apps"`
}

type checkListener struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Mode    string `json:"mode"`
}

type checkApp struct {
	Name      string   `json:"name"`
	Instances int      `json:"instances"`
	Listeners []string `json:"listeners"`
	Ready     string   `json:"ready"`
	Restart   string   `json:"restart"`
	Command   []string `json:"command"`
}

func checkSummary(cfg *hclconfig.Config) checkJSON {
	out := checkJSON{Config: cfg.Path, Kind: "cluster.hcl", Listeners: []checkListener{}, Apps: []checkApp{}}
	if cfg.Procfile {
		out.Kind = "Procfile"
	}
	for _, l := range cfg.Listeners {
		out.Listeners = append(out.Listeners, checkListener{Name: l.Name, Address: l.Written(), Mode: string(l.Mode)})
	}
	for _, a := range cfg.Apps {
		out.Apps = append(out.Apps, checkApp{Name: a.Name, Instances: a.Instances, Listeners: append([]string{}, a.Listeners...),
			Ready: string(a.Ready.Check), Restart: string(a.Restart.Policy), Command: a.Command})
	}
	return out
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
			fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.Written(), l.Mode)
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
