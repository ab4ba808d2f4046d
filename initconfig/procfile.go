package initconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/joho/godotenv"
)

// Source is the file a conversion reads, and where its result goes.
type Source struct {
	// Name is the file as the user named it, for comments and messages.
	Name string
	// Dir is the file's directory, absolute: relative paths in it, and
	// a Procfile's .env, are there.
	Dir string
	// OutDir is the directory cluster.hcl is written into, absolute:
	// paths in cluster.hcl are relative to it.
	OutDir string
	// CPUs is the CPU count that pm2's "every CPU but N" becomes.
	// Default: this machine's.
	CPUs int
}

// rel writes the absolute path p relative to OutDir, as cluster.hcl's
// paths are.
func (s Source) rel(p string) string {
	r, err := filepath.Rel(s.OutDir, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

// procfileLine is one process of a Procfile.
type procfileLine struct {
	name, command string
	line          int
}

// parseProcfile reads "name: command" lines as foreman does: blank lines
// and # comments are skipped, anything else must have a valid name and a
// command.
func parseProcfile(name string, data []byte) ([]procfileLine, error) {
	var out []procfileLine
	seen := make(map[string]int)
	for i, text := range strings.Split(string(data), "\n") {
		n := i + 1
		t := strings.TrimSpace(text)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		proc, command, ok := strings.Cut(t, ":")
		proc, command = strings.TrimSpace(proc), strings.TrimSpace(command)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: this line has no \":\"; each line of a Procfile is \"name: command\"", name, n)
		case !hclconfig.ValidName(proc):
			return nil, fmt.Errorf("%s:%d: the process name %q cannot be an app name: use letters, digits, \"-\" and \"_\", starting with a letter or digit", name, n, proc)
		case command == "":
			return nil, fmt.Errorf("%s:%d: process %q has no command", name, n, proc)
		case seen[proc] > 0:
			return nil, fmt.Errorf("%s:%d: process %q is already defined on line %d", name, n, proc, seen[proc])
		case strings.ContainsRune(command, 0):
			return nil, fmt.Errorf("%s:%d: the command contains a NUL byte", name, n)
		}
		seen[proc] = n
		out = append(out, procfileLine{name: proc, command: command, line: n})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s defines no process: there is nothing to convert", name)
	}
	return out, nil
}

// basePort is the PORT foreman starts from: PORT in the .env next to the
// Procfile, else in the environment, else 5000.
func basePort(dir string) (port int, from string) {
	env, _ := godotenv.Read(filepath.Join(dir, ".env"))
	for _, c := range []struct{ v, from string }{{env["PORT"], "PORT in .env"}, {os.Getenv("PORT"), "PORT in the environment"}} {
		if n, err := strconv.Atoi(c.v); err == nil && n > 0 && n <= 65535 {
			return n, c.from
		}
	}
	return 5000, "foreman's default"
}

// FromProcfile converts a Procfile into the cluster.hcl that says what
// clusterrun does with it: one instance per line, PORT as foreman assigns
// it, the web line behind a proxy listener, the others reloaded
// stop-first, .env loaded.
func FromProcfile(src Source, data []byte) (Result, error) {
	lines, err := parseProcfile(src.Name, data)
	if err != nil {
		return Result{}, err
	}
	base, from := basePort(src.Dir)
	if last := base + 100*(len(lines)-1); last > 65535 {
		return Result{}, fmt.Errorf("%s: its %d lines would get ports up to %d from %d (%s), above 65535", src.Name, len(lines), last, base, from)
	}
	w := &writer{}
	w.comment("", fmt.Sprintf(`Converted by clusterrun init from %s: one app per line, each with one
instance (set instances, or run "clusterrun up -m web=4"), PORT as foreman
assigns it: %d (%s) for the first line, 100 more for each next.
The lines other than web bind what they bind themselves: a reload stops their
old instance before it starts the new one, and their instances share one PORT.`, src.Name, base, from))
	w.line("")
	w.line("env_file = [%s] # foreman reads .env, when there is one", quote("-"+src.rel(filepath.Join(src.Dir, ".env"))))
	dir := ""
	if src.OutDir != src.Dir {
		dir = src.rel(src.Dir)
	}
	for i, l := range lines {
		if l.name != "web" {
			continue
		}
		port := base + 100*i
		w.line("")
		w.comment("", fmt.Sprintf(`The web line is served through a listener the runner holds: the runner
accepts on port %d and forwards each connection to an instance's own $PORT,
so a reload or a scale drops no request.`, port))
		w.line(`listener "web" {`)
		w.line(`  address = "0.0.0.0:%d"`, port)
		w.line(`  mode    = "proxy"`)
		w.line(`}`)
	}
	for i, l := range lines {
		w.line("")
		w.line("app %s {", quote(l.name))
		w.comment("  ", fmt.Sprintf("From %s line %d.", src.Name, l.line))
		w.line("  command = %s", quote(l.command))
		if dir != "" {
			w.line("  dir     = %s # where foreman runs it: the Procfile's directory", quote(dir))
		}
		if l.name == "web" {
			w.line(`  listeners = ["web"]`)
			w.line("}")
			continue
		}
		w.line(`  env     = { PORT = "%d" } # foreman's PORT for this line`, base+100*i)
		w.line(`  reload { order = "stop-first" }`)
		w.line("}")
	}
	return w.result(len(lines)), nil
}
