package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"
)

// defaultNames are the files findConfig looks for in each directory, as
// hclconfig.Find does.
var defaultNames = []string{"cluster.hcl", "Procfile"}

// configFile resolves -f (or, when it is empty, the file findConfig finds
// from the working directory) to an absolute path. The control socket of a
// runner is keyed by that path, so "up" and the commands that talk to it
// must resolve it the same way.
func configFile(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the config file: %w", err)
	}
	return findConfig(wd)
}

// findConfig looks for cluster.hcl, else a Procfile, in dir and then in
// each parent up to the filesystem root, as git looks for .git: the
// nearest directory that has either wins, and hclconfig.Find picks
// between the two there (and refuses one that is not a regular file).
func findConfig(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("cannot find the config file: %w", err)
	}
	for d := dir; ; {
		for _, name := range defaultNames {
			_, err := os.Stat(filepath.Join(d, name))
			if err == nil || !errors.Is(err, fs.ErrNotExist) {
				// Present, or unreadable: Find says which, or why not.
				return hclconfig.Find(d)
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "", fmt.Errorf("no cluster.hcl or Procfile in %s or any parent directory: create one, or name a file with -f", dir)
}

// load reads the config and prints its diagnostics to stderr. It returns
// nil when there were errors.
func load(path string, stderr io.Writer, color bool) *hclconfig.Config {
	return loadWith(path, stderr, color, hclconfig.Options{})
}

// loadWith is load with options: export reads a file without checking it
// against this machine, since it will run on another one.
func loadWith(path string, stderr io.Writer, color bool, o hclconfig.Options) *hclconfig.Config {
	cfg, files, diags := hclconfig.LoadWith(path, o)
	if len(diags) > 0 {
		hclconfig.WriteDiagnostics(stderr, files, diags, termWidth(stderr), color)
	}
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

// loader returns the reload function: it reads the file again, checks that
// the formation of -m still applies to it, and returns the diagnostics as
// the error text when the file is invalid. It returns the file as written:
// the runner applies the formation's counts itself, so that it knows the
// apps -m leaves out (and where each count comes from).
func loader(path string, formation *formationValue) func() (*hclconfig.Config, error) {
	return func() (*hclconfig.Config, error) {
		cfg, files, diags := hclconfig.Load(path)
		if diags.HasErrors() {
			var b strings.Builder
			hclconfig.WriteDiagnostics(&b, files, onlyErrors(diags), 0, false)
			return nil, errors.New(strings.TrimRight(b.String(), "\n"))
		}
		if _, err := formation.apply(cfg); err != nil {
			return nil, err
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
