package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/clusterrun/clusterrun/configload"
	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// enumValue is a flag that takes one of a fixed set of words; anything
// else is refused when the flag is parsed (exit 2), and the shells
// complete the words.
type enumValue struct {
	value   string
	allowed []string
}

func (e *enumValue) String() string { return e.value }
func (e *enumValue) Type() string   { return strings.Join(e.allowed, "|") }

func (e *enumValue) Set(s string) error {
	for _, a := range e.allowed {
		if s == a {
			e.value = s
			return nil
		}
	}
	return fmt.Errorf("must be %s", orList(e.allowed))
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// enumFlag adds --name taking one of allowed (the first is the default).
func enumFlag(cmd *cobra.Command, name, usage string, allowed ...string) *enumValue {
	v := &enumValue{value: allowed[0], allowed: allowed}
	cmd.Flags().Var(v, name, usage)
	cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
	return v
}

// fileFlag adds -f/--file, which every command that works on a config
// file takes.
func fileFlag(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("file", "f", "", "config `FILE` (default: cluster.hcl, else Procfile, in this directory or the nearest parent that has one)")
}

// colorFlag adds --color.
func colorFlag(cmd *cobra.Command) *enumValue {
	return enumFlag(cmd, "color", "colored output (auto: when writing to a terminal and NO_COLOR is not set)", "auto", "always", "never")
}

// colorMode decides whether w gets colors: --color wins, then NO_COLOR
// (any non-empty value), TERM=dumb and whether w is a terminal.
func colorMode(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// formationValue is up's -m: foreman's formation, "web=4,worker=2". It is
// parsed when the flag is, so a bad one is a usage error before anything
// starts; given twice, the second adds to (and overrides) the first.
type formationValue struct {
	counts map[string]int
	text   []string
}

func (f *formationValue) Type() string { return "APP=N,..." }

func (f *formationValue) String() string { return strings.Join(f.text, ",") }

func (f *formationValue) Set(s string) error {
	counts, err := hclconfig.ParseFormation(s)
	if err != nil {
		return err
	}
	if f.counts == nil {
		f.counts = make(map[string]int)
	}
	for name, n := range counts {
		f.counts[name] = n
	}
	f.text = append(f.text, s)
	return nil
}

// apply returns cfg with the formation's instance counts, or cfg itself
// when there is no formation.
func (f *formationValue) apply(cfg *hclconfig.Config) (*hclconfig.Config, error) {
	if f.counts == nil {
		return cfg, nil
	}
	out, err := cfg.WithFormation(f.counts)
	if err != nil {
		return nil, fmt.Errorf("-m %s: %w", f, err)
	}
	return out, nil
}

// completeApps completes the names of the apps in the config file that
// the command's -f names (or that it would find), leaving out those
// already on the command line; max bounds how many it takes (< 0: any).
func completeApps(max int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max >= 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		file, _ := cmd.Flags().GetString("file")
		path, err := configFile(file)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		res, err := configload.Load(path, configload.Options{SkipMachine: true})
		if err != nil || res.Config == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cfg := res.Config
		given := make(map[string]bool, len(args))
		for _, a := range args {
			given[a] = true
		}
		var names []string
		for _, a := range cfg.Apps {
			if !given[a.Name] && strings.HasPrefix(a.Name, toComplete) {
				names = append(names, a.Name)
			}
		}
		sort.Strings(names)
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
