package export

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/hashicorp/hcl/v2"
)

// Formats are the targets Render knows, in the order the help lists them.
var Formats = []string{"systemd", "kubernetes", "nomad", "procfile"}

// Options adjust a rendering to where it will run.
type Options struct {
	// Name names the whole cluster: the Nomad job, the Kubernetes
	// part-of label. Default: the name of the config file's directory.
	Name string
	// Dir is the directory the config file will be in on the target.
	// Paths under the config file's directory here (an app's dir, env
	// files, a relative program) are rebased onto it. Default: the config
	// file's directory, unchanged.
	Dir string
	// Image is the container image of the Kubernetes Deployments, which
	// cluster.hcl does not name. Default: Name.
	Image string
	// CPUs is the count "max" instances become where the target needs a
	// number. Default: this machine's CPU count, as "up" would run here.
	CPUs int
	// LookPath finds a program named without a "/" (systemd looks for
	// those in a fixed list of directories, not on PATH). Default:
	// exec.LookPath, on this machine's PATH.
	LookPath func(string) (string, error)

	// Runner renders one unit, Deployment or job that runs "clusterrun
	// up" on the config, instead of one per app (systemd, kubernetes,
	// nomad).
	Runner bool
	// Clusterrun is the path of the clusterrun binary on the target, for
	// Runner. Default: /usr/local/bin/clusterrun.
	Clusterrun string
	// NotifyFallback renders Type=notify and ExecReload= for systemd
	// older than 253, which has no Type=notify-reload (Runner).
	NotifyFallback bool
	// Watchdog is WatchdogSec= of the runner's unit (Runner). Default 30s;
	// negative: none.
	Watchdog time.Duration
	// PreStop is how a Kubernetes pod waits before SIGTERM: "sleep" (the
	// sleep action, Kubernetes 1.30 and later) or "exec" (sleep in the
	// image's shell). Default "sleep".
	PreStop string
	// PreStopDelay is how long it waits, so that the Service stops sending
	// it connections first. Default 5s; negative: no preStop.
	PreStopDelay time.Duration
	// Replicas is the Deployment's replica count (kubernetes, Runner).
	// Default 1.
	Replicas int
}

// RefusedError is returned by Render when a value of the config cannot be
// written into the target's syntax so that the target reads it back as
// the same value: each is a diagnostic at the attribute it comes from.
type RefusedError struct {
	Format string
	Diags  hcl.Diagnostics
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot export for %s:", e.Format)
	for _, d := range e.Diags {
		b.WriteString("\n  ")
		if d.Subject != nil && d.Subject.Filename != "" {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Detail)
	}
	return b.String()
}

// File is one rendered unit, manifest or job.
type File struct {
	// Name is the file name (no directory), such as "web@.service".
	Name string
	Data []byte
}

// Warning is something of the file that the target cannot express, or
// expresses differently.
type Warning struct {
	// Pos is "file:line" of the block it is about, or "".
	Pos string
	// Subject is `app "web"`, `listener "http"`, or "" for the whole file.
	Subject string
	// Attr is the attribute, such as "ready.check", or "".
	Attr string
	Msg  string
}

func (w Warning) String() string {
	var b strings.Builder
	if w.Pos != "" {
		b.WriteString(w.Pos + ": ")
	}
	if w.Subject != "" {
		b.WriteString(w.Subject + ": ")
	}
	if w.Attr != "" {
		b.WriteString(w.Attr + ": ")
	}
	b.WriteString(w.Msg)
	return b.String()
}

// Render renders cfg for format, one of Formats. What the target cannot
// express is in the warnings; the error is a *RefusedError when a value
// cannot be written so that the target reads it as the config means it
// (no file is returned then), or an unknown format or option.
func Render(format string, cfg *hclconfig.Config, opts Options) ([]File, []Warning, error) {
	r := newRenderer(cfg, opts, format)
	var files []File
	switch {
	case opts.Runner && format == "procfile":
		return nil, nil, fmt.Errorf("--runner is for systemd, kubernetes and nomad: a Procfile runs the apps themselves")
	case opts.PreStop != "sleep" && opts.PreStop != "exec" && opts.PreStop != "":
		return nil, nil, fmt.Errorf("unknown preStop action %q: use sleep or exec", opts.PreStop)
	}
	switch format {
	case "systemd":
		if opts.Runner {
			files = r.systemdRunner()
		} else {
			files = r.systemd()
		}
	case "kubernetes":
		if opts.Runner {
			files = r.kubernetesRunner()
		} else {
			files = r.kubernetes()
		}
	case "nomad":
		if opts.Runner {
			files = r.nomadRunner()
		} else {
			files = r.nomad()
		}
	case "procfile":
		files = r.procfile()
	default:
		return nil, nil, fmt.Errorf("unknown export format %q: use %s", format, strings.Join(Formats, ", "))
	}
	if len(r.refusals) > 0 {
		return nil, merged(r.warns), &RefusedError{Format: format, Diags: r.refusals}
	}
	return files, merged(r.warns), nil
}

// renderer holds one rendering's inputs and the warnings it collects.
type renderer struct {
	cfg    *hclconfig.Config
	opts   Options
	format string
	warns  []Warning
	// refusals are the values that cannot be written: when there is one,
	// Render returns them and no file.
	refusals hcl.Diagnostics
	places   *places
	// defaultImage is true when Options.Image was not given.
	defaultImage bool
}

func newRenderer(cfg *hclconfig.Config, opts Options, format string) *renderer {
	if opts.Name == "" {
		opts.Name = filepath.Base(cfg.Dir)
	}
	if opts.Dir == "" {
		opts.Dir = cfg.Dir
	}
	defaultImage := opts.Image == ""
	if defaultImage {
		opts.Image = dnsLabel(opts.Name)
	}
	if opts.CPUs <= 0 {
		opts.CPUs = runtime.NumCPU()
	}
	if opts.LookPath == nil {
		opts.LookPath = exec.LookPath
	}
	if opts.Clusterrun == "" {
		opts.Clusterrun = "/usr/local/bin/clusterrun"
	}
	if opts.Watchdog == 0 {
		opts.Watchdog = 30 * time.Second
	}
	if opts.PreStop == "" {
		opts.PreStop = "sleep"
	}
	if opts.PreStopDelay == 0 {
		opts.PreStopDelay = 5 * time.Second
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	return &renderer{cfg: cfg, opts: opts, format: format, defaultImage: defaultImage, places: &places{cfg: cfg}}
}

// hclRangeNone is the position of a value that is not in the file (an
// option, a default).
var hclRangeNone hcl.Range

// targetName is the format as a message names it.
func (r *renderer) targetName() string {
	switch r.format {
	case "systemd":
		return "a systemd unit"
	case "kubernetes":
		return "a Kubernetes manifest"
	case "nomad":
		return "a Nomad job"
	}
	return "a Procfile"
}

// refuse records a value that cannot be written, at rng.
func (r *renderer) refuse(rng hcl.Range, format string, args ...any) {
	d := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Cannot export for " + r.format,
		Detail:   fmt.Sprintf(format, args...),
	}
	if rng.Filename != "" {
		d.Subject = &rng
	}
	for _, x := range r.refusals {
		// A global value refused once, whichever apps inherit it.
		if x.Detail == d.Detail && (x.Subject == nil) == (d.Subject == nil) && (x.Subject == nil || *x.Subject == *d.Subject) {
			return
		}
	}
	r.refusals = append(r.refusals, d)
}

// escaped runs esc on a value of app a (nil: the top level of the file)
// written at path, such as ("env_file", 1), and refuses it at its position
// when esc cannot write it. what names the value in the message:
// `the dir of app "web"`.
func (r *renderer) escaped(a *hclconfig.App, path []any, what, setting, s string, esc func(string) (string, string)) string {
	out, bad := esc(s)
	if bad == "" {
		return out
	}
	rng, _ := r.places.find(a, path...)
	r.refuseValue(rng, what, setting, s, bad)
	return ""
}

// text checks a value that an encoder escapes itself (YAML, JSON) with
// check, and refuses it at its position when the format cannot hold it.
// It returns s.
func (r *renderer) text(a *hclconfig.App, path []any, what, s string, check func(string) string) string {
	if bad := check(s); bad != "" {
		rng, _ := r.places.find(a, path...)
		r.refuseValue(rng, what, "", s, bad)
	}
	return s
}

// option runs esc on a value from the command line (an option, or a
// default from this machine), refusing it without a position.
func (r *renderer) option(what, setting, s string, esc func(string) (string, string)) string {
	out, bad := esc(s)
	if bad != "" {
		r.refuseValue(hclRangeNone, what, setting, s, bad)
	}
	return out
}

// optionText checks an option's value for a format whose encoder escapes
// it, and returns it.
func (r *renderer) optionText(what, s string, check func(string) string) string {
	if bad := check(s); bad != "" {
		r.refuseValue(hclRangeNone, what, "", s, bad)
	}
	return s
}

// commandPath is where word i of the app's command was written.
func commandPath(a *hclconfig.App, i int) []any {
	if isShell(a) {
		return []any{"command"}
	}
	return []any{"command", i}
}

// refuseValue refuses the value s, with what cannot hold it and why.
func (r *renderer) refuseValue(rng hcl.Range, what, setting, s, bad string) {
	shown := s
	if len(shown) > 80 {
		shown = shown[:77] + "..."
	}
	where := r.targetName()
	if setting != "" {
		where += "'s " + setting
	}
	r.refuse(rng, "%s, %q, cannot be written into %s: %s. Nothing was written; change the value, or run the app under clusterrun up.", what, shown, where, bad)
}

func (r *renderer) warnApp(a *hclconfig.App, attr, format string, args ...any) {
	r.warns = append(r.warns, Warning{
		Pos:     fmt.Sprintf("%s:%d", a.DefRange.Filename, a.DefRange.Start.Line),
		Subject: fmt.Sprintf("app %q", a.Name),
		Attr:    attr,
		Msg:     fmt.Sprintf(format, args...),
	})
}

func (r *renderer) warnListener(l *hclconfig.Listener, attr, format string, args ...any) {
	w := Warning{Subject: fmt.Sprintf("listener %q", l.Name), Attr: attr, Msg: fmt.Sprintf(format, args...)}
	if l.DefRange.Filename != "" {
		w.Pos = fmt.Sprintf("%s:%d", l.DefRange.Filename, l.DefRange.Start.Line)
	}
	r.warns = append(r.warns, w)
}

func (r *renderer) warnFile(format string, args ...any) {
	r.warns = append(r.warns, Warning{Pos: r.filename(), Msg: fmt.Sprintf(format, args...)})
}

// warnEnv warns about an env variable or env file: of the app, or, when
// global, of the top level of the file, once however many apps inherit it.
func (r *renderer) warnEnv(a *hclconfig.App, global bool, attr, format string, args ...any) {
	if !global {
		r.warnApp(a, attr, format, args...)
		return
	}
	w := Warning{Pos: r.filename(), Attr: attr, Msg: fmt.Sprintf(format, args...)}
	for _, x := range r.warns {
		if x == w {
			return
		}
	}
	r.warns = append(r.warns, w)
}

// filename is the config file as it was named to hclconfig.Load, as the
// positions of its blocks have it.
func (r *renderer) filename() string {
	if len(r.cfg.Apps) > 0 {
		return r.cfg.Apps[0].DefRange.Filename
	}
	return r.cfg.Path
}

// merged folds the warnings that say the same of several apps into one
// line naming them all, at the first one's position.
func merged(warns []Warning) []Warning {
	var out []Warning
	index := make(map[[2]string]int)
	for _, w := range warns {
		if !strings.HasPrefix(w.Subject, "app ") {
			out = append(out, w)
			continue
		}
		key := [2]string{w.Attr, w.Msg}
		i, ok := index[key]
		if !ok {
			index[key] = len(out)
			out = append(out, w)
			continue
		}
		prev := &out[i]
		if strings.HasPrefix(prev.Subject, "app ") {
			prev.Subject = "apps " + strings.TrimPrefix(prev.Subject, "app ")
		}
		prev.Subject += ", " + strings.TrimPrefix(w.Subject, "app ")
	}
	return out
}

// source is the config file's name, for the headers of rendered files.
func (r *renderer) source() string { return comment(filepath.Base(r.cfg.Path)) }

// rebase moves an absolute path under the config file's directory onto
// Options.Dir; any other path is returned as it is.
func (r *renderer) rebase(p string) string {
	rel, err := filepath.Rel(r.cfg.Dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.Join(r.opts.Dir, rel)
}

// relative is p relative to the config file's directory when it is under
// it, for messages.
func (r *renderer) relative(p string) string {
	rel, err := filepath.Rel(r.cfg.Dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return rel
}

// workDir is the app's working directory on the target; written is false
// when the file does not set dir (the app runs in the config file's
// directory).
func (r *renderer) workDir(a *hclconfig.App) (dir string, written bool) {
	return r.rebase(a.Dir), a.Dir != r.cfg.Dir
}

// instances is the app's count where the target needs a number. isMax
// reports "max", which the caller warns about in its own words.
func (r *renderer) instances(a *hclconfig.App) (n int, isMax bool) {
	if a.Written.Instances == "max" {
		return r.opts.CPUs, true
	}
	return a.Instances, false
}

// isShell reports whether the app's command was written as a string.
func isShell(a *hclconfig.App) bool { return a.Written.CommandString != "" }

// program is the program of a list command, "" for a string command.
func program(a *hclconfig.App) string {
	if isShell(a) || len(a.Command) == 0 {
		return ""
	}
	return a.Command[0]
}

// isNode reports whether the app runs node directly, which clusterrun's
// preload makes ready on listen() and maps server.listen(port) onto the
// runner's socket; no other engine does either.
func isNode(a *hclconfig.App) bool {
	p := filepath.Base(program(a))
	return p == "node" || p == "nodejs"
}

// listenersOf returns the app's listener blocks, in its order.
func (r *renderer) listenersOf(a *hclconfig.App) []*hclconfig.Listener {
	var out []*hclconfig.Listener
	for _, name := range a.Listeners {
		if l := r.cfg.Listener(name); l != nil {
			out = append(out, l)
		}
	}
	return out
}

// usersOf lists, for each listener, the apps that use it, in file order.
func (r *renderer) usersOf(l *hclconfig.Listener) []*hclconfig.App {
	var out []*hclconfig.App
	for _, a := range r.cfg.Apps {
		for _, n := range a.Listeners {
			if n == l.Name {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// tcpPort is the port of a tcp listener, or 0 for a random port or a unix
// socket.
func tcpPort(l *hclconfig.Listener) int {
	if l.Network != "tcp" {
		return 0
	}
	i := strings.LastIndex(l.Address, ":")
	n, _ := strconv.Atoi(l.Address[i+1:])
	return n
}

// tcpHost is the host of a tcp listener ("" for every interface).
func tcpHost(l *hclconfig.Listener) string {
	i := strings.LastIndex(l.Address, ":")
	return strings.TrimSuffix(strings.TrimPrefix(l.Address[:i], "["), "]")
}

// port is the PORT the app's instances get where the target can give one
// number: the first listener's port, else a Procfile line's port, else
// 0 (PORT from the app's own env, if any).
func (r *renderer) port(a *hclconfig.App) int {
	if ls := r.listenersOf(a); len(ls) > 0 {
		return tcpPort(ls[0])
	}
	return a.Port
}

// overridden reports whether clusterrun replaces the variable name of an
// app's env with its own: the instance's identity, and PORT when the app
// has one from a listener or a Procfile.
func overridden(name string, hasPort bool) bool {
	return name == "CLUSTERRUN_APP" || name == "CLUSTERRUN_INSTANCE" || (name == "PORT" && hasPort)
}

// commonWarnings reports what no engine has: watch mode and required.
func (r *renderer) commonWarnings(a *hclconfig.App, engine string) {
	if a.Watch != nil {
		var paths []string
		for _, p := range a.Watch.Paths {
			paths = append(paths, r.relative(p))
		}
		r.warnApp(a, "watch", "%s does not watch %s for changes: watch is for development, under clusterrun up", engine, strings.Join(paths, ", "))
	}
	if a.Required {
		r.warnApp(a, "required", "%s has no way to stop every app when this one gives up", engine)
	}
}

// stopSignal is the app's stop signal by name, such as "SIGTERM".
func stopSignal(a *hclconfig.App) string { return signals.Name(a.Stop.Signal) }

// restartTuned reports whether the app's restart block changes clusterrun's
// backoff, crash-loop or give-up defaults, which the container engines
// replace with their own.
func restartTuned(rs hclconfig.Restart) bool {
	return rs.Backoff != hclconfig.DefaultBackoff || rs.MaxBackoff != hclconfig.DefaultMaxBackoff ||
		rs.MinUptime != hclconfig.DefaultMinUptime || rs.MaxRestarts != hclconfig.DefaultMaxRestarts ||
		rs.Window != hclconfig.DefaultWindow
}

// readyDefault reports whether the app has the default readiness: up for
// 1s, within 30s.
func readyDefault(rd hclconfig.Ready) bool {
	return rd.Check == hclconfig.ReadyDelay && rd.Delay == hclconfig.DefaultReadyDelay && rd.Timeout == hclconfig.DefaultReadyTimeout
}

// seconds rounds d up to whole seconds, at least min.
func seconds(d time.Duration, min int) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < min {
		return min
	}
	return s
}

// sdDuration writes d as systemd reads it: "100ms", "10s", "1min 30s".
func sdDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d%time.Second != 0 {
		if d%time.Millisecond == 0 {
			return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
		}
		return strconv.FormatInt(d.Microseconds(), 10) + "us"
	}
	s := int64(d / time.Second)
	var parts []string
	if h := s / 3600; h > 0 {
		parts = append(parts, strconv.FormatInt(h, 10)+"h")
		s %= 3600
	}
	if m := s / 60; m > 0 {
		parts = append(parts, strconv.FormatInt(m, 10)+"min")
		s %= 60
	}
	if s > 0 {
		parts = append(parts, strconv.FormatInt(s, 10)+"s")
	}
	return strings.Join(parts, " ")
}

// sizeString writes a byte count in the largest binary unit that divides
// it: "512MiB", "1GiB", or bytes.
func sizeString(n int64, units []string) string {
	for i := len(units) - 1; i >= 1; i-- {
		if m := int64(1) << (10 * i); n%m == 0 {
			return strconv.FormatInt(n/m, 10) + units[i]
		}
	}
	return strconv.FormatInt(n, 10)
}

// dnsLabel turns a name into an RFC 1123 label, as Kubernetes wants for
// object and container names: lowercase letters, digits and "-", starting
// and ending with a letter or digit, at most 63 characters.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	if out == "" {
		out = "app"
	}
	return out
}

// Concat joins the files of a rendering into the one stream that export
// prints without -o: YAML documents separated by "---", units each under
// a comment naming its file, a job or a Procfile as it is.
func Concat(format string, files []File) []byte {
	var b strings.Builder
	for i, f := range files {
		switch format {
		case "kubernetes":
			b.WriteString("---\n")
		case "systemd":
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "### %s\n", f.Name)
		default:
			if i > 0 {
				b.WriteString("\n")
			}
		}
		b.Write(f.Data)
	}
	return []byte(b.String())
}
