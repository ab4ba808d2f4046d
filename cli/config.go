package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterrun/clusterrun/configload"
	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/mattn/go-isatty"
)

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
		for _, name := range hclconfig.DefaultFiles {
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
	return "", fmt.Errorf("no cluster.hcl or Procfile in %s or any parent directory: \"clusterrun init\" writes a commented cluster.hcl, \"clusterrun run -- COMMAND\" runs one app without a file, and -f names a file elsewhere", dir)
}

// load reads the config in a child process (package configload) and
// prints its diagnostics to stderr. It returns nil when the file has
// errors or could not be read.
func load(path string, stderr io.Writer, o configload.Options) *hclconfig.Config {
	res, err := configload.Load(path, o)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return nil
	}
	io.WriteString(stderr, res.Diagnostics)
	return res.Config
}

// loader returns the reload function: it reads the file again in a child
// process that reaper starts and reaps (package configload), checks that
// the formation of -m still applies to it, and returns the errors, rendered,
// as the error text when the file is invalid. It returns the file as
// written: the runner applies the formation's counts itself, so that it
// knows the apps -m leaves out (and where each count comes from).
func loader(path string, formation *formationValue, reaper *proc.Reaper) func() (*hclconfig.Config, error) {
	return func() (*hclconfig.Config, error) {
		res, err := configload.Load(path, configload.Options{ErrorsOnly: true, Reaper: reaper})
		if err != nil {
			return nil, err
		}
		if res.Config == nil {
			return nil, errors.New(strings.TrimRight(res.Diagnostics, "\n"))
		}
		if _, err := formation.apply(res.Config); err != nil {
			return nil, err
		}
		return res.Config, nil
	}
}

func termWidth(w io.Writer) uint {
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		return 100
	}
	return 0
}
