package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// explain wraps an error from adding a watch on path, turning the
// kernel's terse answers to an exhausted limit into what to do about it.
// inotify (Linux) answers ENOSPC when fs.inotify.max_user_watches is used
// up, which reads as "no space left on device"; kqueue (macOS, BSD) needs
// an open file per watched directory and file, so it runs out of file
// descriptors instead.
func explain(app, path string, err error) error {
	err = cause(err)
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("cannot watch %s for app %q: the kernel's limit on watched directories is reached%s; "+
			"raise it (sysctl fs.inotify.max_user_watches=524288) or ignore large directories in the watch block: %w",
			path, app, sysctlNote("fs.inotify.max_user_watches"), err)
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("cannot watch %s for app %q: too many open files%s; "+
			"raise the limit (ulimit -n) or ignore large directories in the watch block: %w",
			path, app, fileLimitNote(), err)
	}
	return fmt.Errorf("cannot watch %s for app %q: %w", path, app, err)
}

// cause drops the path from a *fs.PathError: the messages here name the
// path already. errors.Is still sees the errno.
func cause(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// explainStart wraps an error from creating the watcher itself. On Linux
// EMFILE there means fs.inotify.max_user_instances, which other programs
// (editors, language servers) share with us.
func explainStart(err error) error {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return fmt.Errorf("cannot start watching files: too many file watchers or open files%s%s; "+
			"raise fs.inotify.max_user_instances or ulimit -n: %w",
			sysctlNote("fs.inotify.max_user_instances"), fileLimitNote(), err)
	}
	return fmt.Errorf("cannot start watching files: %w", err)
}

// sysctlNote is " (name = value)", or "" where the value cannot be read
// (not Linux).
func sysctlNote(name string) string {
	if v := sysctlValue(name); v != "" {
		return " (" + name + v + ")"
	}
	return ""
}

// sysctlValue is " = value" for a Linux sysctl, or "".
func sysctlValue(name string) string {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return ""
	}
	return " = " + strings.TrimSpace(string(b))
}

// fileLimitNote is " (ulimit -n is N)", or "".
func fileLimitNote() string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return ""
	}
	return fmt.Sprintf(" (ulimit -n is %d)", rl.Cur)
}
