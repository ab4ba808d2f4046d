package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print the script that makes the shell complete clusterrun's commands,
flags, flag values, and the app names of the config file.

bash (needs the bash-completion package):
  source <(clusterrun completion bash)                      # this shell
  clusterrun completion bash > /etc/bash_completion.d/clusterrun

zsh (with "autoload -U compinit; compinit" in ~/.zshrc):
  clusterrun completion zsh > "${fpath[1]}/_clusterrun"

fish:
  clusterrun completion fish > ~/.config/fish/completions/clusterrun.fish

Start a new shell for the installed script to take effect.`,
		Example: `  source <(clusterrun completion bash)
  clusterrun completion zsh > "${fpath[1]}/_clusterrun"`,
		GroupID:               groupOther,
		ValidArgs:             []cobra.Completion{"bash", "zsh", "fish"},
		Args:                  argCount(1, 1, "one shell: bash, zsh or fish"),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(out, true)
			case "zsh":
				err = root.GenZshCompletion(out)
			case "fish":
				err = root.GenFishCompletion(out, true)
			default:
				return usageErrorf("completion takes bash, zsh or fish, not %q", args[0])
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "clusterrun: cannot write the completion script: %v\n", err)
				return result(ExitFailure)
			}
			return nil
		},
	}
}
