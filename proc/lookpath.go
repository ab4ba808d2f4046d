package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is the search path for a child whose environment has no
// PATH, as execvp uses.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SearchPath returns the directories in which LookPath looks for a program
// named without a slash, in order: those of the PATH in env (the child's
// environment, not the runner's own), or of DefaultPath when env has none;
// an empty entry is the current directory, and a relative one is relative
// to dir, where the child runs. It is the one rule for where a program is
// found: the runner's spawn (LookPath) and check (package preflight) both
// follow it.
func SearchPath(env []string, dir string) []string {
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	if path == "" {
		return nil
	}
	var dirs []string
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		dirs = append(dirs, filepath.Clean(d))
	}
	return dirs
}

// LookPath finds file the way execvp would in the child: a name with a
// slash is taken relative to dir, any other is searched in SearchPath.
// Looking up before fork turns a typo in cluster.hcl into an error the
// runner reports, not an exit status 127.
func LookPath(file string, env []string, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := Executable(p); err != nil {
			return "", fmt.Errorf("cannot run %q: %w", file, err)
		}
		return p, nil
	}
	for _, d := range SearchPath(env, dir) {
		if p := filepath.Join(d, file); Executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("cannot run %q: not found in the child's PATH", file)
}

// Errors of Executable besides fs.ErrNotExist.
var (
	ErrIsDir         = errors.New("a directory, not a file")
	ErrNotExecutable = errors.New("not executable")
)

// Executable reports whether p is a file this process could execute: nil,
// or an error matching fs.ErrNotExist, ErrIsDir or ErrNotExecutable.
func Executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return ErrIsDir
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%w: %w", ErrNotExecutable, fs.ErrPermission)
	}
	return nil
}
