package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newHelpCmd replaces cobra's help command, which prints the root's help
// and exits 0 for a topic it does not know: here that is a usage error,
// with "did you mean".
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		Long: `Print the help of a command, with its flags and examples; without one, the
list of commands. "clusterrun COMMAND --help" prints the same.`,
		Example: `  clusterrun help up
  clusterrun scale --help`,
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			if len(args) == 0 {
				for _, c := range root.Commands() {
					if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), toComplete) {
						names = append(names, cobra.CompletionWithDesc(c.Name(), c.Short))
					}
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || target == nil || (target == root && len(args) > 0) || len(rest) > 0 {
				topic := strings.Join(args, " ")
				hint := ""
				if len(args) > 0 {
					if s := root.SuggestionsFor(args[0]); len(s) > 0 {
						hint = "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
					}
				}
				return usageErrorf("no help for %q: there is no such command%s", topic, hint)
			}
			return target.Help()
		},
	}
}
