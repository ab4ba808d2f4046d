package initconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
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

// parseProcfile reads "name: command" lines with hclconfig's reader, the
// one clusterrun runs a Procfile with; its first error is returned as
// "Procfile:LINE: what is wrong".
func parseProcfile(name string, data []byte) ([]hclconfig.ProcfileLine, error) {
	lines, diags := hclconfig.ParseProcfile(name, data)
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			detail := d.Detail
			if detail != "" {
				detail = strings.ToLower(detail[:1]) + detail[1:]
			}
			return nil, fmt.Errorf("%s:%d: %s", name, d.Subject.Start.Line, detail)
		}
	}
	return lines, nil
}

// basePort is the PORT foreman starts from (hclconfig.ProcfileBasePort),
// with the .env next to the Procfile.
func basePort(dir string) (port int, from string) {
	env, _ := godotenv.Read(filepath.Join(dir, ".env"))
	return hclconfig.ProcfileBasePort(env, os.Environ())
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
	if last := hclconfig.ProcfilePort(base, len(lines)-1); last > 65535 {
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
		if l.Name != "web" {
			continue
		}
		port := hclconfig.ProcfilePort(base, i)
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
		w.line("app %s {", quote(l.Name))
		w.comment("  ", fmt.Sprintf("From %s line %d.", src.Name, l.Line))
		w.line("  command = %s", quote(l.Command))
		if dir != "" {
			w.line("  dir     = %s # where foreman runs it: the Procfile's directory", quote(dir))
		}
		if l.Name == "web" {
			w.line(`  listeners = ["web"]`)
			w.line("}")
			continue
		}
		w.line(`  env     = { PORT = "%d" } # foreman's PORT for this line`, hclconfig.ProcfilePort(base, i))
		w.line(`  reload { order = "stop-first" }`)
		w.line("}")
	}
	return w.result(len(lines)), nil
}
