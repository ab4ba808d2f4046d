package hclconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// defaultFiles are the names Find looks for, in order.
var defaultFiles = []string{"cluster.hcl", "Procfile"}

// Find returns the config file clusterrun uses in dir when none is named:
// cluster.hcl, else Procfile.
func Find(dir string) (string, error) {
	for _, name := range defaultFiles {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode().IsRegular():
			return p, nil
		case err == nil:
			return "", fmt.Errorf("cannot use %s: it is not a regular file", p)
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("cannot use %s: %w", p, err)
		}
	}
	shown := dir
	if abs, err := filepath.Abs(dir); err == nil {
		shown = abs
	}
	return "", fmt.Errorf("no cluster.hcl or Procfile in %s: create one, or name a file with -f", shown)
}

// Load reads and validates the file at path: a Procfile when its base name
// starts with "Procfile", else cluster.hcl syntax. See Parse.
func Load(path string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read config file",
			Detail:   fmt.Sprintf("Cannot read %s: %s.", path, unwrapPathError(err)),
		}}
	}
	return Parse(path, src)
}

// Parse reads and validates a config from src. filename decides the syntax
// (Procfile or HCL), names the file in diagnostics, and its directory is
// where relative paths in the file resolve.
//
// The Config is nil whenever diags has errors; warnings may come with a
// valid Config. files holds every file a diagnostic points into, for
// WriteDiagnostics.
func Parse(filename string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot resolve config path",
			Detail:   fmt.Sprintf("Cannot make %s absolute: %s.", filename, err),
		}}
	}
	var (
		cfg   *Config
		files map[string]*hcl.File
		diags hcl.Diagnostics
	)
	if isProcfile(filename) {
		cfg, files, diags = parseProcfile(filename, abs, src)
	} else {
		cfg, files, diags = parseHCL(filename, abs, src)
	}
	sortDiagnostics(diags)
	if diags.HasErrors() {
		return nil, files, diags
	}
	return cfg, files, diags
}

func isProcfile(filename string) bool {
	return strings.HasPrefix(filepath.Base(filename), "Procfile")
}

func parseHCL(filename, abs string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	dir := filepath.Dir(abs)
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	files := p.Files()
	if diags.HasErrors() {
		// The body of a file with syntax errors is partial: decoding it
		// would report blocks and attributes the user did write as missing.
		return nil, files, diags
	}

	// The top-level env_file feeds the env variable every expression sees,
	// so it is read first, with only the runner's environment to go on.
	osenv := osEnv()
	fileEnv := map[string]string{}
	pre := &evaluator{ctx: evalContext(osenv)}
	// Schema errors are left to the full decode below, which sees them too.
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "env_file"}}})
	if attr := content.Attributes["env_file"]; attr != nil {
		if items, ok := pre.stringList(attr.Expr, "env_file"); ok {
			m, d := readEnvFiles(items, dir)
			pre.diags = append(pre.diags, d...)
			fileEnv = m
		}
	}
	diags = append(diags, pre.diags...)

	exprEnv := make(map[string]string, len(osenv)+len(fileEnv))
	for k, v := range osenv {
		exprEnv[k] = v
	}
	for k, v := range fileEnv {
		exprEnv[k] = v
	}
	e := &evaluator{ctx: evalContext(exprEnv)}

	raw, schemaDiags := decodeBody(f.Body)
	diags = append(diags, schemaDiags...)

	cfg := &Config{Path: abs, Dir: dir, Env: make(map[string]string)}
	for k, v := range fileEnv {
		cfg.Env[k] = v
	}
	items, _ := e.envMap(raw.Env, "env")
	for _, it := range items {
		cfg.Env[it.key] = it.val
	}

	srcs := &sources{schemaDiags: schemaDiags, filename: filename, end: endOfFile(f)}
	for _, rl := range raw.Listeners {
		l, ls := decodeListener(e, rl, dir, srcs)
		cfg.Listeners = append(cfg.Listeners, l)
		srcs.listeners = append(srcs.listeners, ls)
	}
	for _, ra := range raw.Apps {
		a, as := decodeApp(e, ra, dir, cfg.Env, srcs)
		cfg.Apps = append(cfg.Apps, a)
		srcs.apps = append(srcs.apps, as)
	}
	diags = append(diags, e.diags...)
	diags = append(diags, validate(cfg, srcs, diags.HasErrors())...)
	return cfg, files, diags
}

// sources is what validate needs besides the Config: where each value was
// written, and what the schema check already reported.
type sources struct {
	filename    string
	end         hcl.Range // the end of the file, where a missing app would go
	schemaDiags hcl.Diagnostics
	listeners   []*listenerSource // parallel to Config.Listeners
	apps        []*appSource      // parallel to Config.Apps

	// listenersUnknown is set when an app's listeners failed to evaluate:
	// which listeners are unused is then not known.
	listenersUnknown bool
}

// suggested reports whether the schema check already told the user that
// a misspelled argument in body was probably name ("comand": Did you mean
// "command"?). Reporting name as missing too would only repeat that.
func (s *sources) suggested(body hcl.Body, name string) bool {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	hint := fmt.Sprintf("Did you mean %q?", name)
	for _, d := range s.schemaDiags {
		if d.Subject != nil && b.SrcRange.Overlaps(*d.Subject) && strings.Contains(d.Detail, hint) {
			return true
		}
	}
	return false
}

func endOfFile(f *hcl.File) hcl.Range {
	if b, ok := f.Body.(*hclsyntax.Body); ok {
		return b.EndRange
	}
	return f.Body.MissingItemRange()
}
