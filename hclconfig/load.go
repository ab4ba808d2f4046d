package hclconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// DefaultFiles are the names Find looks for, in order.
var DefaultFiles = []string{"cluster.hcl", "Procfile"}

// Find returns the config file clusterrun uses in dir when none is named:
// cluster.hcl, else Procfile.
func Find(dir string) (string, error) {
	for _, name := range DefaultFiles {
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
	return "", fmt.Errorf("no cluster.hcl or Procfile in %s: \"clusterrun init\" writes a commented cluster.hcl, or name a file with -f", shown)
}

// Load reads and validates the file at path: a Procfile when its base name
// starts with "Procfile", else cluster.hcl syntax. A file over 1 MiB is
// refused without being read whole. See Parse.
func Load(path string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	return complete(LoadPartial(path))
}

// LoadPartial is Load, but the Config is returned as far as it could be
// decoded even when there are errors: a value that failed keeps its
// default, and its range in App.At is nil. It is nil only when the file
// could not be read or parsed. The checks against the machine (package
// preflight) run on it, so that check reports every mistake at once.
func LoadPartial(path string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	src, size, err := readLimited(path)
	switch {
	case err != nil:
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read config file",
			Detail:   fmt.Sprintf("Cannot read %s: %s.", path, unwrapPathError(err)),
		}}
	case size > maxFileSize || len(src) > maxFileSize:
		files := map[string]*hcl.File{}
		return nil, files, hcl.Diagnostics{sizeError(path, size, files, src)}
	}
	return ParsePartial(path, src)
}

// complete drops the Config when there are errors.
func complete(cfg *Config, files map[string]*hcl.File, diags hcl.Diagnostics) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	if diags.HasErrors() {
		return nil, files, diags
	}
	return cfg, files, diags
}

// readLimited reads at most maxFileSize+1 bytes of path, so that a huge
// file (or /dev/zero) is refused without being read. size is the file's
// size when it is a regular file, else -1.
func readLimited(path string) (data []byte, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	size = -1
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
		if size > maxFileSize {
			// Enough to show the first line in the diagnostic.
			head := make([]byte, 256)
			n, _ := io.ReadFull(f, head)
			return head[:n:n], size, nil
		}
	}
	data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > maxFileSize {
		size = -1 // it grew while being read, or is not a regular file
	}
	return data, size, nil
}

// Parse reads and validates a config from src. filename decides the syntax
// (Procfile or HCL), names the file in diagnostics, and its directory is
// where relative paths in the file resolve.
//
// The Config is nil whenever diags has errors; warnings may come with a
// valid Config. files holds every file a diagnostic points into, for
// WriteDiagnostics.
//
// src is untrusted, and this parses it in the calling process: the runner
// and the CLI read a file through package configload, which runs this in
// a child process under resource limits, so that a parser that crashes,
// hangs or blows up harms nothing. The limits kept here are those whose
// message is better than the child's death: 1 MiB, and nesting 64 deep
// with the position where it goes deeper (limits.go).
func Parse(filename string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	return complete(ParsePartial(filename, src))
}

// ParsePartial is Parse with the Config as LoadPartial returns it.
func ParsePartial(filename string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
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
	switch {
	case len(src) > maxFileSize:
		files = map[string]*hcl.File{}
		diags = hcl.Diagnostics{sizeError(filename, int64(len(src)), files, src)}
	case isProcfile(filename):
		cfg, files, diags = parseProcfile(filename, abs, src)
	default:
		cfg, files, diags = parseHCL(filename, abs, src)
	}
	SortDiagnostics(diags)
	return cfg, files, diags
}

func isProcfile(filename string) bool {
	return strings.HasPrefix(filepath.Base(filename), "Procfile")
}

func parseHCL(filename, abs string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	dir := filepath.Dir(abs)
	if diags := checkSyntaxLimits(filename, src); diags.HasErrors() {
		// The parser must not see the file: its recursion is what a deep
		// file overflows. The snippet needs the bytes, not a parse.
		return nil, map[string]*hcl.File{filename: {Body: hcl.EmptyBody(), Bytes: src}}, diags
	}
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
	envs := newEnvReader(dir)
	fileEnv := map[string]string{}
	var fileEnvPaths, writtenEnvFiles []string
	pre := &evaluator{ctx: evalContext(osenv)}
	// Schema errors are left to the full decode below, which sees them too.
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "env_file"}}})
	if attr := content.Attributes["env_file"]; attr != nil {
		if items, ok := pre.stringList(attr.Expr, "env_file"); ok {
			m, paths, d := envs.read(items, "")
			pre.diags = append(pre.diags, d...)
			fileEnv, fileEnvPaths = m, paths
			for _, it := range items {
				writtenEnvFiles = append(writtenEnvFiles, it.val)
			}
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

	cfg := &Config{Path: abs, Dir: dir, Env: make(map[string]string), WrittenEnvFiles: writtenEnvFiles}
	for k, v := range fileEnv {
		cfg.Env[k] = v
	}
	items, _ := e.envMap(raw.Env, "env")
	for _, it := range items {
		cfg.Env[it.key] = it.val
	}
	srcs := &sources{filename: filename, src: src, end: endOfFile(f)}
	cfg.WrittenEnv = writtenVars(items, src)

	for _, rl := range raw.Listeners {
		l, ls := decodeListener(e, rl, dir, srcs)
		cfg.Listeners = append(cfg.Listeners, l)
		srcs.listeners = append(srcs.listeners, ls)
	}
	if raw.Metrics != nil {
		cfg.Metrics = decodeMetrics(e, raw.Metrics, dir, srcs)
	}
	if raw.Control != nil {
		cfg.Control = decodeControl(e, raw.Control, dir)
	}
	g := globals{env: cfg.Env, envFiles: fileEnvPaths}
	for _, ra := range raw.Apps {
		a, as := decodeApp(e, ra, dir, g, envs, srcs)
		cfg.Apps = append(cfg.Apps, a)
		srcs.apps = append(srcs.apps, as)
	}
	diags = append(diags, e.diags...)
	applyProxyDefaults(cfg, srcs)
	diags = append(diags, validate(cfg, srcs, diags.HasErrors())...)
	return cfg, files, diags
}

// sources is what validate needs besides the Config: where each value was
// written, and what the schema check already reported.
type sources struct {
	filename  string
	src       []byte            // the file, for the source text of expressions
	end       hcl.Range         // the end of the file, where a missing app would go
	listeners []*listenerSource // parallel to Config.Listeners
	apps      []*appSource      // parallel to Config.Apps
	metrics   *metricsSource    // nil without a metrics block

	// listenersUnknown is set when an app's listeners failed to evaluate:
	// which listeners are unused is then not known.
	listenersUnknown bool
}

// suggested reports whether body has an attribute whose name is a slip
// for name ("comand" for "command"): the schema check already reported it
// as unsupported, with its suggestion, and reporting name as missing too
// would only repeat that.
func (s *sources) suggested(body hcl.Body, name string) bool {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	for given := range b.Attributes {
		if given != name && didYouMean(given, name) != "" {
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
