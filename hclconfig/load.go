package hclconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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
// starts with "Procfile", else cluster.hcl syntax. A file over 1 MiB is
// refused without being read whole. See Parse.
func Load(path string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	return LoadWith(path, Options{})
}

// Options change how a file is read.
type Options struct {
	// SkipMachine leaves out the checks against this machine (preflight):
	// for a file read to be exported, whose programs, directories and
	// accounts are on the machine it is exported to.
	SkipMachine bool
}

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
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
	return ParseWith(path, src, o)
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
// src is untrusted (a reload parses it inside the live runner), so what it
// may cost is bounded before it is parsed or evaluated: 1 MiB, nesting 64
// deep (limits.go), what its expressions could produce (cost.go), and the
// environment variables copied into apps (envfile.go). A file that is
// valid is then checked against the machine (preflight.go): what `up`
// would refuse or crash-loop on is an error here.
func Parse(filename string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	return ParseWith(filename, src, Options{})
}

// ParseWith is Parse with options.
func ParseWith(filename string, src []byte, o Options) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
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
		cfg, files, diags = parseProcfile(filename, abs, src, o)
	default:
		cfg, files, diags = parseHCL(filename, abs, src, o)
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

func parseHCL(filename, abs string, src []byte, o Options) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
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
		z := newCoster(osenv)
		if z.check(attr.Expr); z.diags.HasErrors() {
			return nil, files, append(diags, z.diags...)
		}
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
	// Nothing is evaluated before the whole file's cost is known.
	z := newCoster(osenv, fileEnv)
	if z.checkBody(f.Body); z.diags.HasErrors() {
		return nil, files, append(diags, z.diags...)
	}

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
	srcs := &sources{schemaDiags: schemaDiags, filename: filename, src: src, end: endOfFile(f)}
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
	if !diags.HasErrors() && !o.SkipMachine {
		// The machine is checked only once the file itself is right:
		// until then its errors are what to fix, and a half-decoded app
		// would only produce noise here.
		diags = append(diags, preflight(cfg, hclPlaces(cfg, srcs), sys)...)
	}
	return cfg, files, diags
}

// sources is what validate needs besides the Config: where each value was
// written, and what the schema check already reported.
type sources struct {
	filename    string
	src         []byte    // the file, for the source text of expressions
	end         hcl.Range // the end of the file, where a missing app would go
	schemaDiags hcl.Diagnostics
	listeners   []*listenerSource // parallel to Config.Listeners
	apps        []*appSource      // parallel to Config.Apps
	metrics     *metricsSource    // nil without a metrics block

	// listenersUnknown is set when an app's listeners failed to evaluate:
	// which listeners are unused is then not known.
	listenersUnknown bool

	// hints indexes the schema check's "Did you mean" suggestions by the
	// name suggested, each list sorted by position; built on first use.
	hints map[string][]hcl.Range
}

// suggested reports whether the schema check already told the user that
// a misspelled argument in body was probably name ("comand": Did you mean
// "command"?). Reporting name as missing too would only repeat that.
func (s *sources) suggested(body hcl.Body, name string) bool {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	if s.hints == nil {
		// An index, not a scan per body: a file of 5,000 app blocks each
		// missing a command must not cost 5,000 x 5,000 comparisons.
		s.hints = make(map[string][]hcl.Range)
		for _, d := range s.schemaDiags {
			if d.Subject == nil {
				continue
			}
			_, after, ok := strings.Cut(d.Detail, "Did you mean \"")
			if !ok {
				continue
			}
			if hint, _, ok := strings.Cut(after, "\"?"); ok {
				s.hints[hint] = append(s.hints[hint], *d.Subject)
			}
		}
		for _, rs := range s.hints {
			sort.Slice(rs, func(i, j int) bool { return rs[i].Start.Byte < rs[j].Start.Byte })
		}
	}
	rs := s.hints[name]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End.Byte > b.SrcRange.Start.Byte })
	return i < len(rs) && b.SrcRange.Overlaps(rs[i])
}

func endOfFile(f *hcl.File) hcl.Range {
	if b, ok := f.Body.(*hclsyntax.Body); ok {
		return b.EndRange
	}
	return f.Body.MissingItemRange()
}
