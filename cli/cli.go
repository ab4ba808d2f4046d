// Package cli implements clusterrun's command line on cobra: one file per
// command, each with a newXxxCmd constructor listed in commands below, the
// flags it takes, its help and examples, and the wiring from its flags to
// the packages that do the work. Every command ends in one of the exit
// codes listed in docs/config.md.
//
// To add a command, write NAME.go with a
// newNameCmd(root *cobra.Command) *cobra.Command whose RunE returns
// usageErrorf for a bad command line (exit 2) or result(code) after
// reporting the outcome itself, and add newNameCmd to commands.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, as documented in docs/config.md.
const (
	// ExitOK: clean shutdown, or a command that did what it was asked.
	ExitOK = 0
	// ExitFailure: a required app gave up, or the runner (or a command)
	// failed.
	ExitFailure = 1
	// ExitUsage: bad command line or invalid config; nothing was started.
	ExitUsage = 2
)

// Command groups, in the order the help lists them.
const (
	groupRun     = "run"
	groupControl = "control"
	groupOther   = "other"
)

// commands are the constructors of the top-level commands, each in its own
// file. The root is passed in for the few that need the whole tree (help,
// completion).
var commands = []func(root *cobra.Command) *cobra.Command{
	newUpCmd,
	newRunCmd,
	newCheckCmd,
	newInitCmd,
	newExportCmd,
	newStatusCmd,
	newLsCmd,
	newTopCmd,
	newLogsCmd,
	newReloadCmd,
	newRestartCmd,
	newScaleCmd,
	newStopCmd,
	newStartCmd,
	newVersionCmd,
	newCompletionCmd,
}

// Run runs the command line args (without the program name), writing to
// stdout and stderr, and returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	if args == nil {
		// cobra reads os.Args when given nil.
		args = []string{}
	}
	root.SetArgs(negativeArgs(root, args))
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	// Everything else is about the command line: an unknown command or
	// flag, a flag value or an argument count that the command refused.
	if cmd == nil || cmd.Name() == "help" {
		cmd = root
	}
	msg := strings.TrimRight(err.Error(), "\n")
	if strings.Contains(msg, "\n") {
		msg += "\n"
	}
	fmt.Fprintf(stderr, "clusterrun: %s\nRun '%s --help' for usage.\n", msg, cmd.CommandPath())
	return ExitUsage
}

// exitCode is the error of a command that has already told the user what
// went wrong: Run exits with it and prints nothing more.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// result turns a command's exit code into its RunE error.
func result(code int) error {
	if code == ExitOK {
		return nil
	}
	return exitCode(code)
}

// usageErrorf is a command-line mistake: Run prints it with a pointer to
// the command's help and exits 2.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

const rootLong = `clusterrun runs N instances of every app in cluster.hcl on shared listening
sockets, in the foreground: pm2's cluster mode for any language, without a
daemon. It restarts what crashes, turns SIGHUP into a zero-downtime rolling
reload and SIGTERM into a graceful drain.

The file is cluster.hcl, else a Procfile, in the working directory or the
nearest parent directory that has one (as git finds .git); -f names another.
The control commands (status, reload, scale, ...) find the running "up" of
that file through a socket only its owner can open.

Signals to "up": SIGHUP reloads, SIGTERM or SIGINT drain (a second one,
half a second or more later, kills), SIGTTIN and SIGTTOU add or remove one instance of every app with
listeners; others are forwarded to every instance.

Exit codes: 0 ok, 1 failure (or a required app gave up), 2 usage or
config error (nothing was started).`

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "clusterrun",
		Short: "Run N instances of each app on shared sockets, in the foreground",
		Long:  rootLong,
		Example: `  clusterrun up                          # run ./cluster.hcl (or a parent's) until Ctrl-C
  clusterrun up -f examples/go-http/cluster.hcl
  clusterrun status                      # in another terminal
  clusterrun reload web                  # zero-downtime rolling reload of one app
  clusterrun help up                     # help and examples of one command`,
		Version:       versionText(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// The completion command below generates bash, zsh and fish
		// scripts only, with our own help text.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddGroup(
		&cobra.Group{ID: groupRun, Title: "Run a cluster:"},
		&cobra.Group{ID: groupControl, Title: "Control the running cluster (talk to its \"up\"):"},
		&cobra.Group{ID: groupOther, Title: "Other commands:"},
	)
	for _, newCmd := range commands {
		root.AddCommand(newCmd(root))
	}
	root.SetHelpCommand(newHelpCmd(root))
	root.SetHelpCommandGroupID(groupOther)
	return root
}

// argCount checks a command's positional arguments: between min and max of
// them (max < 0: no limit), else a usage error that says what the command
// takes.
func argCount(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && (max < 0 || len(args) <= max) {
			return nil
		}
		switch {
		case max == 0:
			return usageErrorf("%s takes no arguments, got %q", cmd.Name(), args)
		case len(args) < min:
			return usageErrorf("%s needs %s", cmd.Name(), what)
		default:
			return usageErrorf("%s takes %s, got %q", cmd.Name(), what, args)
		}
	}
}

// negativeArgs rewrites args so that a positional argument that looks like
// a negative number ("scale web -1") reaches the command as an argument:
// pflag would read it as the shorthand flag -1 (no clusterrun flag is a
// digit). Flags and their values stay in front; the positional arguments
// move, in their order, behind a "--". Anything else is left as it is.
func negativeArgs(root *cobra.Command, args []string) []string {
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root || cmd.DisableFlagParsing || cmd.Annotations[argsAreCommand] != "" {
		return args
	}
	fs := cmd.Flags()
	takesValue := func(name string, short bool) bool {
		f := fs.Lookup(name)
		if short {
			f = fs.ShorthandLookup(name)
		}
		return f != nil && f.NoOptDefVal == ""
	}
	var flags, pos []string
	moved := false
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			pos = append(pos, rest[i+1:]...)
			i = len(rest)
		case isNegativeNumber(a):
			pos = append(pos, a)
			moved = true
		case strings.HasPrefix(a, "--"):
			flags = append(flags, a)
			if name, _, inline := strings.Cut(a[2:], "="); !inline && takesValue(name, false) && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			// In a group such as -xn5 or -n 5, the first shorthand that
			// takes a value takes the rest of the group, or else the next
			// argument.
			for j := 1; j < len(a); j++ {
				if takesValue(a[j:j+1], true) {
					if j == len(a)-1 && i+1 < len(rest) {
						i++
						flags = append(flags, rest[i])
					}
					break
				}
			}
		default:
			pos = append(pos, a)
		}
	}
	if !moved {
		return args
	}
	path := strings.Fields(cmd.CommandPath())[1:]
	out := append(path, flags...)
	out = append(out, "--")
	return append(out, pos...)
}

func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
