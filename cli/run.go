package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/initconfig"
	"github.com/clusterrun/clusterrun/preflight"
	"github.com/spf13/cobra"
)

// argsAreCommand marks a command whose positional arguments are a command
// line of their own: negativeArgs leaves them alone.
const argsAreCommand = "argsAreCommand"

func newRunCmd(*cobra.Command) *cobra.Command {
	var (
		instances, port, mode, ready, name *string
		env                                *[]string
		print, timestamps                  *bool
		logFormat, colors                  *enumValue
	)
	cmd := &cobra.Command{
		Use:   "run [-i N] [-p PORT] [--mode M] [--ready CHECK] [-e K=V]... [--print] -- COMMAND [ARG...]",
		Short: "Run one app without a file, as if a one-app cluster.hcl said so",
		Long: `Run COMMAND as one app, N instances of it, in the foreground, exactly as
"clusterrun up" runs a cluster.hcl with one app block, and one listener when
-p is given. It is what "pm2 start server.js -i 4" is to pm2: a start
without a file. --print writes that file instead of running it (it passes
"clusterrun check"): save it as cluster.hcl to keep the setup.

The flags stop at the first argument that is not one of them: everything
from there (or after "--") is the command and its arguments, exec'd as they
are, in the working directory. The app is named after its script or
program ("node server.js" is "server"; --name sets it).

-p takes a port (every interface), host:port or unix:/path. Node apps that
call listen(PORT) share that socket as they would under pm2's cluster mode,
and are ready when they listen; others take it as fd 3 (LISTEN_FDS), or use
--mode proxy (or --mode http, for an HTTP app: the runner then reads each
request, and reloads and crashes cost no request) and bind $PORT
themselves. --ready takes notify, tcp, delay, exit or http[:PATH] (tcp and
http need --mode proxy or http).

While it runs, the other commands find it from any directory that has no
cluster.hcl of its own ("clusterrun status", "reload", "scale APP N"; see
"clusterrun ls"). A reload (SIGHUP) replaces every instance, one at a time.

Exit status: as "clusterrun up": 0 after a clean shutdown, 1 on failure, 2
for a bad command line or flags that make an invalid file.`,
		Example: `  clusterrun run -i 4 -p 8080 -- node server.js     # pm2 start server.js -i 4
  clusterrun run -i max -p 8000 --mode http -- python3 -m http.server
  clusterrun run -p 8080 -e NODE_ENV=production --ready http:/healthz --mode proxy -- node app.js
  clusterrun run --print -i 4 -p 8080 -- node server.js > cluster.hcl`,
		GroupID:     groupRun,
		Args:        argCount(1, -1, "a command: clusterrun run [flags] -- COMMAND [ARG...]"),
		Annotations: map[string]string{argsAreCommand: "true"},
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := commandOf(argv, *instances, *port, *mode, *ready, *name, *env)
			if err != nil {
				return err
			}
			return result(runCommand(cmd.OutOrStdout(), cmd.ErrOrStderr(), c, *print, *timestamps, logFormat.value, colors.value))
		},
	}
	cmd.Flags().SetInterspersed(false)
	instances = cmd.Flags().StringP("instances", "i", "", `how many instances: a number (1 to 4096) or "max" (one per CPU); default 1`)
	port = cmd.Flags().StringP("port", "p", "", "the listener: `PORT` (every interface), HOST:PORT or unix:/path; none without it")
	mode = cmd.Flags().String("mode", "", "the listener's `MODE`: shared (default), reuseport, proxy or http")
	ready = cmd.Flags().String("ready", "", "when an instance is ready: `CHECK` notify, tcp, http[:PATH], delay or exit (default: notify for Node with -p, else delay; tcp in proxy and http modes)")
	name = cmd.Flags().String("name", "", "the app's `NAME` (default: its script or program)")
	env = cmd.Flags().StringArrayP("env", "e", nil, "set `KEY=VALUE` in the app's environment (repeatable)")
	print = cmd.Flags().Bool("print", false, "write the equivalent cluster.hcl to stdout instead of running")
	timestamps = cmd.Flags().Bool("timestamps", false, "prefix every line with the time")
	logFormat = enumFlag(cmd, "log-format", "output format: text, or json (one object per line: time, app, instance, pid, stream, line)", "text", "json")
	colors = colorFlag(cmd)
	return cmd
}

// Compiled at first use: every process of the binary (the guard, the
// config reader) runs package init, and only run needs these.
var (
	countOrMax = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+|max)$`) })
	envName    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
)

// commandOf turns run's flags into the app they describe; what the flags
// cannot say wrong by their form is left to hclconfig, which judges the
// file they make.
func commandOf(argv []string, instances, port, mode, ready, name string, env []string) (initconfig.Command, error) {
	c := initconfig.Command{Argv: argv, Name: name, Address: port, Mode: mode}
	if instances != "" && !countOrMax().MatchString(instances) {
		return c, usageErrorf(`-i takes a number of instances or "max", not %q`, instances)
	}
	c.Instances = instances
	if mode != "" && port == "" {
		return c, usageErrorf("--mode is the mode of the listener: it needs -p")
	}
	c.Ready, c.ReadyPath, _ = strings.Cut(ready, ":")
	if c.ReadyPath != "" && c.Ready != "http" {
		return c, usageErrorf("--ready %s: only http takes a path (http:/healthz)", ready)
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envName().MatchString(k) {
			return c, usageErrorf("-e takes KEY=VALUE, not %q", kv)
		}
		if c.Env == nil {
			c.Env = make(map[string]string)
		}
		c.Env[k] = v
	}
	return c, nil
}

// runCommand prints the file c makes (print), or runs it as up would.
func runCommand(stdout, stderr io.Writer, c initconfig.Command, print, timestamps bool, logFormat, colors string) int {
	if print {
		res := initconfig.FromCommand(c)
		stdout.Write(res.File)
		wd, err := os.Getwd()
		if err != nil {
			wd = "."
		}
		if checkGenerated(stderr, "the printed file (as cluster.hcl here)", filepath.Join(wd, "cluster.hcl"), res.File) {
			return ExitUsage
		}
		return ExitOK
	}
	// The file lives in a private directory for the run; the app runs
	// here, where its command was typed.
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot run: %v\n", err)
		return ExitFailure
	}
	c.Dir = wd
	res := initconfig.FromCommand(c)
	dir, err := os.MkdirTemp("", "clusterrun-run-")
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot write the file to run: %v\n", err)
		return ExitFailure
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(path, res.File, 0o600); err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot write the file to run: %v\n", err)
		return ExitFailure
	}
	if checkGenerated(stderr, "the file these flags make (--print shows it)", path, res.File) {
		return ExitUsage
	}
	return up(stdout, stderr, path, nil, timestamps, logFormat, colors, &formationValue{})
}

// checkGenerated prints what "clusterrun check" says of a file clusterrun
// wrote, data, as if it were at path, naming it what; it reports whether
// any of it is an error.
func checkGenerated(stderr io.Writer, what, path string, data []byte) bool {
	cfg, files, diags := hclconfig.ParsePartial(path, data)
	if cfg != nil {
		diags = append(diags, preflight.Check(cfg)...)
		hclconfig.SortDiagnostics(diags)
	}
	if len(diags) > 0 {
		fmt.Fprintf(stderr, "clusterrun check finds this to fix in %s:\n", what)
		hclconfig.WriteDiagnostics(stderr, files, diags, termWidth(stderr), false)
	}
	return diags.HasErrors()
}
