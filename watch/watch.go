// Package watch is clusterrun's watch mode (the watch block of an app):
// it watches the app's paths and env files and asks for the app's rolling
// reload when they change, once per debounced burst of changes.
//
// One goroutine owns all the state: the fsnotify watcher's events, the set
// of watched directories, and the pending bursts. fsnotify is not
// recursive, so a watched directory tree is walked at start and every new
// directory that appears in it is walked and added as its Create event
// arrives. The parent of each tree is watched as well, so that a tree
// that is removed and made again is watched again. Symbolic links inside a tree are never followed, so a watch
// never leaves the tree it was given; a watch path that is itself a link
// is resolved once, and changes are still reported under the path as
// configured.
package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the quiet period used when Options.Debounce is zero.
const DefaultDebounce = 300 * time.Millisecond

// Spec is what to watch for one app.
type Spec struct {
	App string
	// Paths are absolute. A directory is watched recursively; a file is
	// watched through its directory, so that replacing it works.
	Paths []string
	// Ignore are globs matched against paths relative to each of Paths;
	// see pattern for the exact rules. Ignored directories are not
	// watched at all.
	Ignore []string
	// EnvFiles are the absolute env files the app reads. Each is watched
	// through its directory, because editors save by writing a new file
	// and renaming it over the old one, which a watch on the file itself
	// would lose. A missing one (an optional env file) is reported when it
	// appears; one whose directory is missing is skipped with a log line.
	// Ignore does not apply to them.
	EnvFiles []string
}

// Options configure a Watcher.
type Options struct {
	// Debounce is the quiet period that ends a burst of changes: the
	// app's reload is asked for once no change came for this long (and
	// at the latest ten periods after the burst's first change). Zero
	// means DefaultDebounce.
	Debounce time.Duration
	// Reload is called on the Watcher's goroutine with the app and the
	// first changed path of the burst. It must return quickly (start the
	// reload, do not wait for it) and must not call Close. It is called
	// again for a burst that comes while the app's previous reload is
	// still running: coalescing is the caller's business.
	Reload func(app, path string)
	// Logf, if set, receives one line per reload and every problem met
	// after New returned (a new directory that cannot be watched, lost
	// events).
	Logf func(format string, args ...any)
}

// Watcher watches the files of one or more apps.
type Watcher struct {
	fsw  *fsnotify.Watcher
	quit chan struct{} // closed by Close
	done chan struct{} // closed when loop returns

	closeOnce sync.Once
	closeErr  error

	// Set up by New, then owned by loop.
	opts    Options
	targets []target
	dirs    map[string]struct{} // directories with a watch, as fsnotify names them
	deb     *debouncer
	apps    []string // in the order of the specs, for overflows
}

// target is one watched path of one app.
type target struct {
	app string
	// tree: a directory watched recursively; otherwise one file, watched
	// through its directory.
	tree bool
	// given is the path as configured, used in reports; real is what
	// events name (given, or where the link given points to).
	given, real string
	ignore      []pattern // tree only
}

// New starts watching. Errors name the app and the path that cannot be
// watched; an exhausted kernel limit says which one and how to raise it.
func New(specs []Spec, opts Options) (*Watcher, error) {
	if opts.Reload == nil {
		return nil, errors.New("cannot start watching files: no Reload function")
	}
	if opts.Debounce < 0 {
		return nil, fmt.Errorf("cannot start watching files: negative debounce %v", opts.Debounce)
	}
	if opts.Debounce == 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, explainStart(err)
	}
	w := &Watcher{
		fsw:  fsw,
		quit: make(chan struct{}),
		done: make(chan struct{}),
		opts: opts,
		dirs: map[string]struct{}{},
		deb:  newDebouncer(opts.Debounce),
	}
	for _, s := range specs {
		if err := w.addSpec(s); err != nil {
			_ = fsw.Close() // the error that matters is err
			return nil, err
		}
	}
	go w.loop()
	return w, nil
}

// Close stops watching. No Reload call happens after Close returns; Close
// waits for one in progress. Calling it again returns the first result.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.quit)
		<-w.done
		w.closeErr = w.fsw.Close()
	})
	return w.closeErr
}

// addSpec sets up the targets and watches of one app. It runs before the
// loop starts, so it may touch the loop's state.
func (w *Watcher) addSpec(s Spec) error {
	if s.App == "" {
		return errors.New("cannot watch files: a watch spec has no app name")
	}
	pats, err := compilePatterns(s.Ignore)
	if err != nil {
		return fmt.Errorf("cannot watch the files of app %q: %w", s.App, err)
	}
	w.apps = append(w.apps, s.App)
	for _, p := range s.Paths {
		if err := w.addPath(s.App, p, pats); err != nil {
			return err
		}
	}
	for _, p := range s.EnvFiles {
		if err := w.addFile(s.App, p, true); err != nil {
			return err
		}
	}
	return nil
}

func (w *Watcher) addPath(app, p string, pats []pattern) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("cannot watch %s for app %q: not an absolute path", p, app)
	}
	p = filepath.Clean(p)
	real := p
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = filepath.EvalSymlinks(p); err == nil {
			fi, err = os.Stat(real)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot watch %s for app %q: %w", p, app, cause(err))
	}
	if !fi.IsDir() {
		return w.addFile(app, p, false)
	}
	t := target{app: app, tree: true, given: p, real: real, ignore: pats}
	w.targets = append(w.targets, t)
	if err := w.watchTree(t, real); err != nil {
		return err
	}
	// The tree's parent too, so that a root that is removed and made
	// again ("rm -rf dist && mkdir dist", how builds start) is seen coming
	// back: its Create event is in the parent.
	if parent := filepath.Dir(real); parent != real {
		if err := w.addDir(app, parent); err != nil {
			w.opts.Logf("watch: %s cannot be watched, so %s is not seen if it is removed and made again: %v", parent, p, cause(err))
		}
	}
	return nil
}

// addFile watches one file through its directory. An env file may be
// missing (optional ones are listed whether or not they exist), so for
// one only a missing directory is not an error.
func (w *Watcher) addFile(app, p string, env bool) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("cannot watch %s for app %q: not an absolute path", p, app)
	}
	p = filepath.Clean(p)
	names := []string{p}
	// A file that is a link changes where it points to: watch there too.
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			names = append(names, real)
		}
	}
	for _, name := range names {
		dir := filepath.Dir(name)
		if err := w.addDir(app, dir); err != nil {
			if env && errors.Is(err, fs.ErrNotExist) {
				w.opts.Logf("watch: not watching env file %s of app %q: directory %s does not exist", p, app, dir)
				continue
			}
			return err
		}
		w.targets = append(w.targets, target{app: app, given: p, real: name})
	}
	return nil
}

// watchTree adds a watch on dir and every directory under it that t does
// not ignore. WalkDir does not follow links, which keeps the watch inside
// the tree.
func (w *Watcher) watchTree(t target, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked: its Remove event follows
			}
			return fmt.Errorf("cannot watch %s for app %q: %w", p, t.app, cause(err))
		}
		if !d.IsDir() {
			return nil
		}
		if rel, _ := within(t.real, p); ignored(t.ignore, rel) {
			return filepath.SkipDir
		}
		if err := w.addDir(t.app, p); err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		return nil
	})
}

func (w *Watcher) addDir(app, dir string) error {
	if _, ok := w.dirs[dir]; ok {
		return nil
	}
	if err := w.fsw.Add(dir); err != nil {
		return explain(app, dir, err)
	}
	w.dirs[dir] = struct{}{}
	return nil
}

// loop is the one goroutine that owns the Watcher's state after New.
func (w *Watcher) loop() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-w.quit:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.handle(ev, time.Now())
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.fail(err, time.Now())
		case <-timer.C:
			if !w.fire(time.Now()) {
				return
			}
		}
		// With Go 1.23 timers, Reset and Stop leave no stale tick behind.
		if at, ok := w.deb.next(); ok {
			timer.Reset(time.Until(at))
		} else {
			timer.Stop()
		}
	}
}

// handle keeps the watched directories in step with the tree and records
// the change for every app it concerns.
func (w *Watcher) handle(ev fsnotify.Event, now time.Time) {
	name := filepath.Clean(ev.Name)
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// A renamed directory keeps its inotify watch under the old name;
		// drop it, and the Create of the new name watches it afresh.
		w.forget(name)
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(name); err == nil && fi.IsDir() {
			w.grow(name)
		}
	}
	for i := range w.targets {
		if path, ok := w.targets[i].match(name); ok {
			w.deb.add(w.targets[i].app, path, now)
		}
	}
}

// grow watches a directory that appeared, for each tree it belongs to.
// Files created in it before its watch was added are not seen, but the
// directory's own Create already started a burst, so the reload that
// follows includes them.
func (w *Watcher) grow(dir string) {
	for _, t := range w.targets {
		if !t.tree {
			continue
		}
		rel, ok := within(t.real, dir)
		if !ok || ignored(t.ignore, rel) {
			continue
		}
		if err := w.watchTree(t, dir); err != nil {
			w.opts.Logf("watch: %v", err)
		}
	}
}

// forget drops the watches of a directory that was removed or renamed,
// and of everything under it.
func (w *Watcher) forget(name string) {
	if _, ok := w.dirs[name]; !ok {
		return
	}
	for d := range w.dirs {
		if _, ok := within(name, d); ok {
			delete(w.dirs, d)
			// The kernel may have dropped the watch already: nothing to do.
			_ = w.fsw.Remove(d)
		}
	}
	for _, t := range w.targets {
		if t.tree && t.real == name {
			w.opts.Logf("watch: %s was removed or renamed; it is watched again for app %q when it is made again", t.given, t.app)
		}
	}
}

// fail handles an error from fsnotify. Lost events mean unknown changes,
// so every app reloads.
func (w *Watcher) fail(err error, now time.Time) {
	if !errors.Is(err, fsnotify.ErrEventOverflow) {
		w.opts.Logf("watch: %v", err)
		return
	}
	w.opts.Logf("watch: too many changes at once, some were lost (%v); reloading every watched app", err)
	for _, app := range w.apps {
		for _, t := range w.targets {
			if t.app == app {
				w.deb.add(app, t.given, now)
				break
			}
		}
	}
}

// fire asks for the reloads that are due. It returns false if Close was
// called meanwhile: no Reload may follow it.
func (w *Watcher) fire(now time.Time) bool {
	for _, f := range w.deb.due(now) {
		select {
		case <-w.quit:
			return false
		default:
		}
		more := ""
		if f.others > 0 {
			more = fmt.Sprintf(" (and %d more)", f.others)
		}
		w.opts.Logf("watch: %s changed%s; reloading app %q", f.path, more, f.app)
		w.opts.Reload(f.app, f.path)
	}
	return true
}

// match reports whether a change of name concerns t, and the path to
// report for it.
func (t *target) match(name string) (string, bool) {
	if !t.tree {
		return t.given, name == t.real
	}
	rel, ok := within(t.real, name)
	if !ok || ignored(t.ignore, rel) {
		return "", false
	}
	return filepath.Join(t.given, rel), true
}

// within returns p relative to root if p is root or under it.
func within(root, p string) (string, bool) {
	if p == root {
		return ".", true
	}
	prefix := root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	return p[len(prefix):], true
}
