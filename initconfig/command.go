package initconfig

import (
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Command is one app given on a command line, as "clusterrun run" takes it:
// what a one-app cluster.hcl would say.
type Command struct {
	// Argv is the program and its arguments, exec'd as they are.
	Argv []string
	// Name is the app's name; "" names it after its script or program.
	Name string
	// Instances is a count or "max"; "" leaves the default (1).
	Instances string
	// Address is the listener's address ("8080" means every interface);
	// "" for an app without one.
	Address string
	// Mode is the listener's mode; "" leaves the default.
	Mode string
	// Ready is the ready check, and ReadyPath its path for "http"; ""
	// leaves the default (for a Node app with a listener: "notify", as
	// pm2's cluster mode counts it ready when it listens).
	Ready, ReadyPath string
	// Env is the app's environment.
	Env map[string]string
	// Dir is the app's dir as written; "" runs it in the file's folder.
	Dir string
}

// Like every regexp of this package, it is compiled at first use: every
// process of the binary runs package init, and few of them convert a file.
var allDigits = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+$`) })

// FromCommand writes the cluster.hcl that runs c: one app, and one
// listener when c has an address. It writes what it is given; clusterrun
// check (package hclconfig) judges it.
func FromCommand(c Command) Result {
	w := &writer{}
	w.comment("", `One app, as "clusterrun run" flags say. Save it as cluster.hcl and run
"clusterrun up" there; every block and attribute: docs/config.md.`)
	name := c.Name
	if name == "" {
		name = CommandName(c.Argv)
	}
	listener := ""
	if c.Address != "" {
		listener = name
		addr := c.Address
		if allDigits().MatchString(addr) {
			addr = ":" + addr // every interface, as listen(PORT) binds
		}
		w.line("")
		w.comment("", "The runner binds it once; every instance accepts on it (fd 3, LISTEN_FDS).")
		w.line("listener %s {", quote(listener))
		w.line("  address = %s", quote(addr))
		if c.Mode != "" {
			w.line("  mode    = %s", quote(c.Mode))
		}
		w.line("}")
	}
	w.line("")
	w.line("app %s {", quote(name))
	w.line("  command = %s", quoteList(c.Argv))
	if c.Dir != "" {
		w.line("  dir = %s", quote(c.Dir))
	}
	if c.Instances != "" {
		if allDigits().MatchString(c.Instances) {
			w.line("  instances = %s", c.Instances)
		} else {
			w.line("  instances = %s", quote(c.Instances))
		}
	}
	if listener != "" {
		w.line("  listeners = [%s]", quote(listener))
	}
	w.envBlock("  ", c.Env)
	ready := c.Ready
	note := ""
	if ready == "" && listener != "" && len(c.Argv) > 0 && runsNode(c.Argv[0]) {
		ready, note = "notify", " # ready when it calls listen(), as in pm2's cluster mode"
	}
	if ready != "" {
		w.line("")
		w.line("  ready {")
		w.line("    check = %s%s", quote(ready), note)
		if c.ReadyPath != "" {
			w.line("    path  = %s", quote(c.ReadyPath))
		}
		w.line("  }")
	}
	w.line("}")
	return w.result(1)
}

// CommandName is the app name a command line gets, as pm2 names an app
// after its script: "node server.js" is "server", "./bin/api -v" is "api".
func CommandName(argv []string) string {
	if len(argv) == 0 {
		return "app"
	}
	word := argv[0]
	if isInterpreter(argv[0]) {
		for _, a := range argv[1:] {
			if !strings.HasPrefix(a, "-") {
				word = a
				break
			}
		}
	}
	base := filepath.Base(word)
	if ext := filepath.Ext(base); interpreters[ext] != "" && ext != base {
		base = strings.TrimSuffix(base, ext) // a script's extension
	}
	return appName(base)
}

// isInterpreter reports whether prog runs a script named after it, as
// the interpreters pm2 knows do.
func isInterpreter(prog string) bool {
	base := filepath.Base(prog)
	if runsNode(prog) {
		return true
	}
	for _, in := range interpreters {
		if base == in {
			return true
		}
	}
	return strings.HasPrefix(base, "python") || base == "deno"
}

// runsNode reports whether prog is Node, whose listen(PORT) the preload
// maps onto the runner's socket and reports ready (or Bun, which pm2's
// conversion counts as Node too).
func runsNode(prog string) bool {
	base := filepath.Base(prog)
	return base == "node" || strings.HasSuffix(base, "node") || base == "bun" || strings.HasSuffix(base, "bun")
}
