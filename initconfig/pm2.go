package initconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/watch"
)

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

// plainWords reports whether a command line is words and nothing else
// that a shell reads specially (no expansions, operators, redirections or
// globs), so that splitting it gives the argv any shell would.
func plainWords(s string) bool {
	return !strings.ContainsAny(s, "$&|;<>()*?[]{}~`!#\\'\"\n\t") && !strings.Contains(s, "=")
}

// scriptKind looks at a script as pm2 does to choose its interpreter: the
// file in dir (or on PATH), and whether it is text (node runs it) or a
// binary (run as it is). found is false when it is in neither place.
func scriptKind(dir, script string) (text, found bool) {
	p := script
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if _, err := os.Stat(p); err != nil {
		if _, err := exec.LookPath(script); err == nil && !strings.Contains(script, "/") {
			return false, true // a program on PATH: a binary, as pm2 finds it
		}
		return false, false
	}
	f, err := os.Open(p)
	if err != nil {
		return false, false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	// pm2's isbinaryfile: NUL bytes, or too many control bytes.
	if bytes.IndexByte(head, 0) >= 0 || bytes.HasPrefix(head, []byte("\x7fELF")) {
		return false, true
	}
	return true, true
}

// listenPort finds the port a Node script listens on: listen(8000), or
// PORT || 3000. Only a script pm2 would run in cluster mode is read, and
// only its first 256 KiB.
var listenPort = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:\.listen\(\s*|PORT\s*(?:\|\||\?\?)\s*)(\d{2,5})\b`)
})

func scriptPort(dir, script string) int {
	p := script
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	src, _ := io.ReadAll(io.LimitReader(f, 256<<10))
	ports := map[int]bool{}
	for _, m := range listenPort().FindAllSubmatch(src, -1) {
		if n, err := strconv.Atoi(string(m[1])); err == nil && n > 0 && n <= 65535 {
			ports[n] = true
		}
	}
	if len(ports) != 1 {
		return 0 // none, or several: not for a guess
	}
	for n := range ports {
		return n
	}
	return 0
}

// interpreters are the programs pm2 runs a script with, by extension.
var interpreters = map[string]string{
	".js": "node", ".cjs": "node", ".mjs": "node",
	".py": "python3", ".rb": "ruby", ".sh": "bash", ".php": "php", ".pl": "perl",
	".coffee": "coffee", ".ts": "ts-node",
}

// pm2Notes say why an ecosystem field has no equivalent, as
// docs/from-pm2.md does.
var pm2Notes = map[string]string{
	"cron_restart":          "a cron job can run clusterrun restart APP",
	"out_file":              "one stream on stdout; redirect it, or --log-format json for a shipper",
	"error_file":            "one stream on stdout, \"!\" marking stderr lines",
	"err_file":              "one stream on stdout, \"!\" marking stderr lines (pm2's err_file is its error_file)",
	"error":                 "one stream on stdout, \"!\" marking stderr lines (pm2's error is its error_file)",
	"output":                "one stream on stdout; redirect it (pm2's output is its out_file)",
	"pid_file":              "clusterrun status --json lists the pids",
	"log_file":              "one stream on stdout; redirect it",
	"merge_logs":            "one stream on stdout",
	"combine_logs":          "one stream on stdout",
	"log_date_format":       "clusterrun up --timestamps",
	"time":                  "clusterrun up --timestamps",
	"instance_var":          "every instance gets CLUSTERRUN_INSTANCE (0..N-1)",
	"increment_var":         "derive it from CLUSTERRUN_INSTANCE",
	"shutdown_with_message": "stops are signals, to the whole process group",
	"treekill":              "stops always go to the instance's whole process group",
	"namespace":             "no equivalent",
	"vizion":                "no equivalent",
	"source_map_support":    "no equivalent",
	"automation":            "no equivalent",
	"pmx":                   "no equivalent",
	"force":                 "no equivalent",
	"append_env_to_name":    "no equivalent",
	"filter_env":            "no equivalent",
	"disable_trace":         "no equivalent",
	"exec_interpreter":      "no equivalent",
}

// pm2App is one app of an ecosystem file on its way to cluster.hcl: each
// field read is removed from raw, and what is left is unmapped.
type pm2App struct {
	raw   map[string]any
	label string // `app "api"`, for messages
	w     *writer
}

func (p *pm2App) take(k string) (any, bool) {
	v, ok := p.raw[k]
	delete(p.raw, k)
	return v, ok && v != nil
}

func (p *pm2App) unmap(field, format string, args ...any) {
	p.w.unmap("%s: %s: %s", p.label, field, fmt.Sprintf(format, args...))
}

// str takes a string field (a number is taken as written).
func (p *pm2App) str(k string) (string, bool) {
	v, ok := p.take(k)
	if !ok {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	p.unmap(k, "not a string: %s", jsonText(v))
	return "", false
}

// words takes a field that pm2 takes as a string of words or an array.
func (p *pm2App) words(k string) []string {
	v, ok := p.take(k)
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case string:
		return splitWords(x)
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, scalar(e))
		}
		return out
	}
	p.unmap(k, "not a string or a list: %s", jsonText(v))
	return nil
}

// millis takes a duration field: pm2 takes milliseconds, or a string such
// as "10s" for some fields.
func (p *pm2App) millis(k string) (string, bool) {
	v, ok := p.take(k)
	if !ok {
		return "", false
	}
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil && f >= 0 {
			return msDuration(int64(f)), true
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil && n >= 0 {
			return msDuration(n), true
		}
		if d, err := time.ParseDuration(x); err == nil && d >= 0 {
			return x, true
		}
	}
	p.unmap(k, "not a duration (milliseconds, or such as \"10s\"): %s", jsonText(v))
	return "", false
}

// msDuration writes n milliseconds as cluster.hcl's durations read.
func msDuration(n int64) string {
	switch {
	case n == 0:
		return "0s"
	case n%1000 == 0:
		return strconv.FormatInt(n/1000, 10) + "s"
	}
	return strconv.FormatInt(n, 10) + "ms"
}

// scalarList is a value pm2 takes as one item or a list, as strings.
func scalarList(v any) []string {
	if l, ok := v.([]any); ok {
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = scalar(x)
		}
		return out
	}
	return []string{scalar(v)}
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return jsonText(v)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// splitWords splits a command-line string as pm2 does for args: on
// spaces, with '...' and "..." quoting and backslash escapes.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != '\'' && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

var sizePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([KkMmGg]?)[Bb]?$`) })

// memorySize turns pm2's max_memory_restart ("300M", "1G", "512K", or
// bytes) into cluster.hcl's: pm2's units are powers of 1024.
func memorySize(v any) (string, bool) {
	s := scalar(v)
	m := sizePattern().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", false
	}
	unit := map[string]string{"": "", "k": "KiB", "m": "MiB", "g": "GiB"}[strings.ToLower(m[2])]
	return m[1] + unit, true
}

// portArg finds a port in args: --port N, --port=N, -p N.
func portArg(args []string) int {
	for i, a := range args {
		var v string
		switch {
		case (a == "--port" || a == "-p" || a == "--PORT") && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(a, "--port="):
			v = strings.TrimPrefix(a, "--port=")
		default:
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 65535 {
			return n
		}
	}
	return 0
}

// ecosystemNotes say why a top-level key of an ecosystem file has no
// equivalent.
var ecosystemNotes = map[string]string{
	"deploy": "pm2 deploy (ssh, git pull, post-deploy hooks) has no equivalent: ship the files with your deploy tool or CI, then run clusterrun reload",
	"static": "pm2 serve's static servers have no equivalent: add an app that serves the folder (such as python3 -m http.server $PORT)",
}

// FromEcosystem converts the apps of a pm2 ecosystem file.
func FromEcosystem(src Source, eco *Ecosystem) Result {
	w := &writer{}
	w.comment("", fmt.Sprintf(`Converted by clusterrun init from %s (pm2). pm2 stops an app with
SIGINT, and so does each app here (stop.signal); clusterrun's default is SIGTERM.
pm2 restarts an app whatever its exit status (restart.policy = "always" here).
Where the file does not set them, pm2's defaults differ from clusterrun's:
pm2 SIGKILLs 1.6s after SIGINT (kill_timeout), clusterrun after stop.timeout
(10s); pm2 restarts at once, clusterrun after a backoff doubling from 100ms;
pm2 gives up after 16 unstable restarts in a row, clusterrun after 10 within
a minute (restart.max_restarts, window).`, src.Name))
	for _, k := range sortedKeys(eco.Other) {
		note, ok := ecosystemNotes[k]
		if !ok {
			note = fmt.Sprintf("no equivalent (%s)", jsonText(eco.Other[k]))
		}
		w.unmap("%s: %s", k, note)
	}
	names := make(map[string]bool)
	for i, raw := range eco.Apps {
		convertApp(w, src, i, raw, names)
	}
	return w.result(len(eco.Apps))
}

func convertApp(w *writer, src Source, index int, raw map[string]any, names map[string]bool) {
	p := &pm2App{raw: make(map[string]any, len(raw)), w: w}
	for k, v := range raw {
		p.raw[k] = v
	}
	script, hasScript := p.str("script")
	var notes []string // comments on the app block
	if !hasScript {
		// pm2's aliases of script, in a JSON file.
		for _, alias := range []string{"cmd", "command"} {
			if s, ok := p.str(alias); ok {
				script, hasScript = s, true
				notes = append(notes, fmt.Sprintf("pm2's %q is its script", alias))
				break
			}
		}
	}
	// pm2 runs a script with a space in it as bash -c SCRIPT, named
	// after the whole of it, and without its args.
	shellScript := hasScript && strings.Contains(script, " ")
	given, _ := p.str("name")
	name := given
	if name == "" {
		base := filepath.Base(script)
		name = strings.TrimSuffix(base, filepath.Ext(base))
		if shellScript {
			name = strings.Join(strings.Fields(script), "-")
		}
	}
	name = appName(name)
	for base, n := name, 2; names[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	names[name] = true
	p.label = fmt.Sprintf("app %q", name)
	if given != "" && given != name {
		notes = append(notes, fmt.Sprintf("pm2's name %q is not an app name here (letters, digits, \"-\", \"_\")", given))
	}

	// dir: pm2's cwd, relative to the ecosystem file; else the file's
	// directory, where pm2 runs the app.
	appDir := src.Dir
	if cwd, ok := p.str("cwd"); ok && cwd != "" {
		appDir = cwd
		if !filepath.IsAbs(appDir) {
			appDir = filepath.Join(src.Dir, cwd)
		}
	}
	dir := ""
	if filepath.Clean(appDir) != filepath.Clean(src.OutDir) {
		dir = src.rel(appDir)
	}

	// command: interpreter, its arguments, the script, its arguments.
	args := p.words("args")
	interpArgs := append(p.words("interpreter_args"), p.words("node_args")...)
	interp, _ := p.str("interpreter")
	if interp == "" {
		interp, _ = p.str("exec_interpreter")
	}
	if !hasScript {
		p.unmap("script", "the app has no script: write its command")
		script = "REPLACE-ME"
	}
	var command []string
	commandString := ""
	ext := strings.ToLower(filepath.Ext(script))
	switch {
	case shellScript:
		interp = ""
		if len(args) > 0 {
			p.unmap("args", "pm2 ignores args when the script has a space (it runs bash -c SCRIPT): %s", strings.Join(args, " "))
			args = nil
		}
		if plainWords(script) {
			command = splitWords(script)
			notes = append(notes, "pm2 runs this script through bash -c; it is one command, run here as it is")
		} else {
			commandString = script
			notes = append(notes, "pm2 runs this script with bash -c, clusterrun with /bin/sh -c: bash-only syntax needs bash -c here")
		}
	case interp == "none":
		interp = ""
	case interp == "" && interpreters[ext] != "":
		interp = interpreters[ext]
		if ext == ".py" {
			notes = append(notes, "pm2 runs .py with python, or python3 where there is no python; python3 here")
		}
	case interp == "":
		// pm2 runs any other script that is not a binary with node.
		if isText, found := scriptKind(appDir, script); found && isText {
			interp = "node"
			notes = append(notes, "pm2 runs a script that is not a binary and has no known extension with node")
		} else if !found {
			p.unmap("script", "%s is not in %s nor on PATH here, so whether pm2 runs it with node cannot be told: check the command", script, src.rel(appDir))
		}
	}
	if commandString == "" {
		if interp != "" {
			command = append(command, interp)
			command = append(command, interpArgs...)
		} else if len(interpArgs) > 0 {
			p.unmap("interpreter_args", "the script runs without an interpreter here: %s", strings.Join(interpArgs, " "))
		}
		if !shellScript {
			command = append(command, script)
		}
		command = append(command, args...)
	}
	node := runsNode(interp)

	// env: env, and the profiles as unmapped.
	env := make(map[string]string)
	if v, ok := p.take("env"); ok {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				env[k] = scalar(x)
			}
		} else {
			p.unmap("env", "not an object: %s", jsonText(v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.raw)) {
		if strings.HasPrefix(k, "env_") {
			p.take(k)
			p.unmap(k, "cluster.hcl has no env profiles: put these variables in an env_file (such as .%s) or in another file run with -f", strings.ReplaceAll(k, "_", "."))
		}
	}
	if strings.Contains(interp, "python") {
		if _, ok := env["PYTHONUNBUFFERED"]; !ok {
			env["PYTHONUNBUFFERED"] = "1"
			notes = append(notes, "PYTHONUNBUFFERED=1 is what pm2 sets for a Python script")
		}
	}

	// user and group: pm2's uid (or user) and gid.
	user, _ := p.str("uid")
	if u, ok := p.str("user"); ok && user == "" {
		user = u
	}
	group, _ := p.str("gid")
	if user != "" {
		p.unmap("user", "pm2 also sets HOME to %s's home directory; clusterrun leaves HOME as it is: set it in env if the app reads it", user)
	}

	// instances and exec_mode.
	instances := ""
	instancesSet := false
	if v, ok := p.take("instances"); ok {
		instancesSet = true
		switch s := scalar(v); s {
		case "max", "0":
			instances = `"max"`
		default:
			n, err := strconv.Atoi(s)
			switch {
			case err == nil && n >= 1 && n <= 4096:
				instances = s
			case err == nil && n < 0 && n > -4096:
				// Every CPU but -n: a count of this machine's CPUs.
				cpus := src.CPUs
				if cpus <= 0 {
					cpus = runtime.NumCPU()
				}
				c := max(1, cpus+n)
				instances = strconv.Itoa(c)
				notes = append(notes, fmt.Sprintf("pm2's instances = %d is every CPU but %d: written as %d for this machine's %d CPUs (\"max\" is every CPU)", n, -n, c, cpus))
			default:
				instancesSet = false
				p.unmap("instances", "not a count: %s", jsonText(v))
			}
		}
	}
	mode, _ := p.str("exec_mode")
	mode = strings.TrimSuffix(mode, "_mode")
	if mode == "" && instancesSet && node {
		mode = "cluster"
		notes = append(notes, "pm2 runs a Node script with instances in cluster mode (no exec_mode needed)")
	}
	port := 0
	portFrom := ""
	if v, ok := p.take("port"); ok {
		port, _ = strconv.Atoi(scalar(v))
		portFrom = "its port"
	}
	if port == 0 {
		if port, _ = strconv.Atoi(env["PORT"]); port != 0 {
			portFrom = "its env PORT"
		}
	}
	if port == 0 {
		if port = portArg(args); port != 0 {
			portFrom = "its args"
		}
	}
	if port == 0 && mode == "cluster" {
		if port = scriptPort(appDir, script); port != 0 {
			portFrom = fmt.Sprintf("the listen(%d) in %s", port, script)
		}
	}
	listener := ""
	switch {
	case mode == "cluster" && port > 0 && port <= 65535:
		listener = name
		delete(env, "PORT")
	case mode == "cluster":
		p.unmap("exec_mode", `cluster mode shares one port between the instances, and neither port, env PORT, args nor the script says which: add a listener block with its address and list it in the app's listeners (without one, every instance binds the port itself and all but one fail)`)
	case mode != "" && mode != "fork":
		p.unmap("exec_mode", "%q is not a pm2 mode (cluster or fork)", mode)
	}

	// ready
	var ready []string
	waitReady := false
	if v, ok := p.take("wait_ready"); ok {
		waitReady = v == true
	}
	listenTimeout, hasListenTimeout := p.millis("listen_timeout")
	switch {
	case waitReady:
		ready = append(ready, `check = "notify"`)
		notes = append(notes, `wait_ready: pm2's process.send("ready") is not read here: the app sends
READY=1 on $NOTIFY_SOCKET, or in Node:
  require("fs").writeSync(+process.env.CLUSTERRUN_READY_FD, "READY=1\n")`+func() string {
			if node && listener != "" {
				return "\nA Node app with a listener is also ready when it calls listen(), as in\npm2's cluster mode."
			}
			return ""
		}())
	case node && listener != "":
		ready = append(ready, `check = "notify" # ready when it calls listen(), as in pm2's cluster mode`)
	}
	if hasListenTimeout {
		ready = append(ready, "timeout = "+quote(listenTimeout))
	}

	// watch
	var watchPaths, ignore []string
	if v, ok := p.take("watch"); ok {
		switch x := v.(type) {
		case bool:
			if x {
				watchPaths = []string{"."}
			}
		case string:
			watchPaths = []string{x}
		case []any:
			for _, e := range x {
				watchPaths = append(watchPaths, scalar(e))
			}
		default:
			p.unmap("watch", "not true, a path or a list: %s", jsonText(v))
		}
	}
	for _, g := range p.words("ignore_watch") {
		if err := watch.CheckPattern(g); err != nil {
			if errors.Is(err, path.ErrBadPattern) {
				p.unmap("ignore_watch", "%q is not a glob (clusterrun's ignore takes globs such as \"**/*.log\", not regular expressions)", g)
			} else {
				p.unmap("ignore_watch", "%q cannot be used: %s (clusterrun's ignore takes globs such as \"**/*.log\")", g, err)
			}
			continue
		}
		ignore = append(ignore, g)
	}
	var keptPaths []string
	for _, wp := range watchPaths {
		// pm2 watches relative to the app's cwd.
		abs := wp
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(appDir, wp)
		}
		if _, err := os.Stat(abs); err != nil {
			p.unmap("watch", "%s does not exist, and clusterrun watches only paths that do", wp)
			continue
		}
		keptPaths = append(keptPaths, src.rel(abs))
	}
	if len(keptPaths) == 0 && len(ignore) > 0 {
		p.unmap("ignore_watch", "nothing is watched")
		ignore = nil
	}

	// restart
	var restart []string
	policy := `policy = "always" # pm2 restarts whatever the exit status`
	if v, ok := p.take("autorestart"); ok && v == false {
		policy = `policy = "never"`
	} else if v, ok := p.take("stop_exit_codes"); ok {
		// Exits pm2 does not restart: exit 0 alone is clusterrun's
		// on-failure.
		if codes := scalarList(v); slices.Equal(codes, []string{"0"}) {
			policy = `policy = "on-failure" # pm2's stop_exit_codes = [0]`
		} else {
			p.unmap("stop_exit_codes", "only exit 0 counts as success here: %s", jsonText(v))
		}
	}
	restart = append(restart, policy)
	if v, ok := p.take("max_restarts"); ok {
		if n, err := strconv.Atoi(scalar(v)); err == nil && n >= 0 {
			restart = append(restart, fmt.Sprintf("max_restarts = %d # within window (pm2 counts unstable restarts in a row)", n))
		} else {
			p.unmap("max_restarts", "not a count: %s", jsonText(v))
		}
	}
	if d, ok := p.millis("min_uptime"); ok {
		restart = append(restart, "min_uptime = "+quote(d))
	}
	if d, ok := p.millis("restart_delay"); ok {
		restart = append(restart, "backoff = "+quote(d), "max_backoff = "+quote(d)+" # pm2's fixed delay")
		if _, ok := p.raw["exp_backoff_restart_delay"]; ok {
			p.take("exp_backoff_restart_delay")
			p.unmap("exp_backoff_restart_delay", "restart_delay is set too, and backoff is taken from it")
		}
	}
	if d, ok := p.millis("exp_backoff_restart_delay"); ok {
		restart = append(restart, "backoff = "+quote(d)+" # doubles (pm2: x1.5) up to max_backoff")
	}
	if v, ok := p.take("max_memory_restart"); ok {
		if s, ok := memorySize(v); ok {
			restart = append(restart, "max_memory = "+quote(s))
		} else {
			p.unmap("max_memory_restart", "not a size such as \"300M\": %s", jsonText(v))
		}
	}

	// stop
	stop := []string{`signal = "SIGINT" # what pm2 sends`}
	if d, ok := p.millis("kill_timeout"); ok {
		stop = append(stop, "timeout = "+quote(d))
	}

	// Whatever is left has no equivalent.
	for _, k := range slices.Sorted(maps.Keys(p.raw)) {
		v := p.raw[k]
		delete(p.raw, k)
		if note, ok := pm2Notes[k]; ok {
			p.unmap(k, "%s", note)
			continue
		}
		p.unmap(k, "no equivalent (%s)", jsonText(v))
	}

	// Write it.
	if listener != "" {
		w.line("")
		w.comment("", fmt.Sprintf(`pm2's cluster mode on port %d (from %s): the runner binds
it once and every instance accepts on it; a Node app's listen(%d) needs no
change, others take the socket as fd 3 (LISTEN_FDS).`, port, portFrom, port))
		w.line("listener %s {", quote(listener))
		w.line(`  address = "0.0.0.0:%d"`, port)
		w.line("}")
	}
	w.line("")
	w.line("app %s {", quote(name))
	what := fmt.Sprintf("%s, app %d", src.Name, index+1)
	if given != "" {
		what += fmt.Sprintf(" (%q)", given)
	}
	w.comment("  ", "From "+what+".")
	for _, n := range notes {
		w.comment("  ", n)
	}
	if commandString != "" {
		w.line("  command = %s", quote(commandString))
	} else {
		w.line("  command = %s", quoteList(command))
	}
	if dir != "" {
		w.line("  dir = %s", quote(dir))
	}
	if instances != "" {
		w.line("  instances = %s", instances)
	}
	if listener != "" {
		w.line("  listeners = [%s]", quote(listener))
	}
	if user != "" {
		w.line("  user = %s", quote(user))
	}
	if group != "" {
		w.line("  group = %s", quote(group))
	}
	w.envBlock("  ", env)
	block := func(name string, attrs []string) {
		if len(attrs) == 0 {
			return
		}
		w.line("")
		w.line("  %s {", name)
		for _, a := range attrs {
			w.line("    %s", a)
		}
		w.line("  }")
	}
	block("ready", ready)
	if len(keptPaths) > 0 {
		attrs := []string{"paths = " + quoteList(keptPaths)}
		if len(ignore) > 0 {
			attrs = append(attrs, "ignore = "+quoteList(ignore))
		}
		block("watch", attrs)
	}
	block("restart", restart)
	block("stop", stop)
	w.line("}")
}
