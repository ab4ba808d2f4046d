// Package cli implements clusterrun's commands: parsing their flags,
// wiring the packages together and turning outcomes into exit codes.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"
)

// Exit codes (SPEC §8).
const (
	// ExitOK: clean shutdown, or a command that did what it was asked.
	ExitOK = 0
	// ExitFailure: a required app gave up, or the runner (or a command)
	// failed.
	ExitFailure = 1
	// ExitUsage: bad command line or invalid config; nothing was started.
	ExitUsage = 2
)

// version is set at build time with -ldflags "-X ...cli.version=v1.2.3".
var version = "dev"

// Version prints the version.
func Version(w io.Writer) int {
	fmt.Fprintf(w, "clusterrun %s\n", version)
	return ExitOK
}

const usage = `clusterrun runs N instances of every app in cluster.hcl on shared sockets.

Usage:
  clusterrun up [-f FILE] [--timestamps] [--log-format text|json] [--color auto|always|never] [APP...]
  clusterrun check [-f FILE]
  clusterrun status [-f FILE] [--json]            (alias: ps)
  clusterrun reload [-f FILE] [APP]
  clusterrun restart [-f FILE] APP[.N]
  clusterrun scale [-f FILE] APP N|+N|-N
  clusterrun stop [-f FILE] APP
  clusterrun start [-f FILE] APP
  clusterrun logs [-f FILE] [APP]

FILE defaults to cluster.hcl in the current directory, else Procfile.
Signals to "up": SIGHUP reloads, SIGTERM/SIGINT drain (twice: kill),
SIGTTIN/SIGTTOU add/remove one instance of every app with listeners.
`

// Usage prints the command summary.
func Usage(w io.Writer) { io.WriteString(w, usage) }

// Usagef prints a usage error and a pointer to the help.
func Usagef(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "clusterrun: "+format+"\n", args...)
	fmt.Fprintln(w, "Run 'clusterrun help' for usage.")
}

// newFlags returns a flag set that reports errors on stderr without
// exiting, with the -f flag every command takes.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "config file (default: cluster.hcl, else Procfile)")
	return fs, file
}

// parseArgs parses flags that may come before, between or after the
// positional arguments ("up web -f x.hcl"), which package flag alone stops
// at.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		// "scale web -1" means minus one, not a flag named 1.
		for len(args) > 0 && isNegativeNumber(args[0]) {
			pos = append(pos, args[0])
			args = args[1:]
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
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

// configFile resolves -f (or the default) to an absolute path; the control
// socket of a runner is keyed by it.
func configFile(flagValue string) (string, error) {
	p := flagValue
	if p == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		if p, err = hclconfig.Find(wd); err != nil {
			return "", err
		}
	}
	return filepath.Abs(p)
}

// colorMode decides whether w gets colors: --color wins, then NO_COLOR
// (any non-empty value), TERM=dumb and whether w is a terminal.
func colorMode(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto", "":
	default:
		return false, fmt.Errorf("--color must be auto, always or never, not %q", mode)
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false, nil
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())), nil
}

// load reads the config and prints its diagnostics to stderr. It returns
// nil when there were errors.
func load(path string, stderr io.Writer, color bool) *hclconfig.Config {
	cfg, files, diags := hclconfig.Load(path)
	if len(diags) > 0 {
		hclconfig.WriteDiagnostics(stderr, files, diags, termWidth(stderr), color)
	}
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

// loader returns the reload function: it reads the file again and returns
// its diagnostics as the error text when it is invalid.
func loader(path string) func() (*hclconfig.Config, error) {
	return func() (*hclconfig.Config, error) {
		cfg, files, diags := hclconfig.Load(path)
		if diags.HasErrors() {
			var b strings.Builder
			hclconfig.WriteDiagnostics(&b, files, onlyErrors(diags), 0, false)
			return nil, errors.New(strings.TrimRight(b.String(), "\n"))
		}
		return cfg, nil
	}
}

func onlyErrors(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}

func termWidth(w io.Writer) uint {
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		return 100
	}
	return 0
}
