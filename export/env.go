package export

import (
	"path/filepath"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/joho/godotenv"
	"github.com/zclconf/go-cty/cty"
)

// envVar is one variable of an app's written environment: the top-level
// env under the app's own.
type envVar struct {
	hclconfig.WrittenVar
	// global is true for a variable of the top-level env.
	global bool
	// parts is the value as text and env references, as written; nil when
	// the expression is something else (a function call, a conditional),
	// which a target can only render as its value here.
	parts []part
}

// part is a piece of a written value: text, or a reference to an env
// variable.
type part struct {
	text string
	ref  string
}

// hasRefs reports whether the value references env variables.
func (v envVar) hasRefs() bool {
	for _, p := range v.parts {
		if p.ref != "" {
			return true
		}
	}
	return false
}

// render writes the value for a target: text through escape, references
// through ref. A value that is not text and references is its value here,
// escaped.
func (v envVar) render(ref, escape func(string) string) string {
	if v.parts == nil {
		return escape(v.Value)
	}
	var b strings.Builder
	for _, p := range v.parts {
		if p.ref != "" {
			b.WriteString(ref(p.ref))
		} else {
			b.WriteString(escape(p.text))
		}
	}
	return b.String()
}

// refNames lists the variables the value references, in order.
func (v envVar) refNames() []string {
	var out []string
	for _, p := range v.parts {
		if p.ref != "" {
			out = append(out, p.ref)
		}
	}
	return out
}

// appEnv is the app's written environment: the top-level env, then the
// app's env, an app variable replacing a top-level one of the same name.
func appEnv(cfg *hclconfig.Config, a *hclconfig.App) []envVar {
	own := make(map[string]bool, len(a.Written.Env))
	for _, v := range a.Written.Env {
		own[v.Name] = true
	}
	var out []envVar
	for _, v := range cfg.WrittenEnv {
		if !own[v.Name] {
			out = append(out, newEnvVar(v, true))
		}
	}
	for _, v := range a.Written.Env {
		out = append(out, newEnvVar(v, false))
	}
	return out
}

func newEnvVar(w hclconfig.WrittenVar, global bool) envVar {
	v := envVar{WrittenVar: w, global: global}
	if w.Literal {
		v.parts = []part{{text: w.Value}}
		return v
	}
	expr, diags := hclsyntax.ParseExpression([]byte(w.Source), "", hcl.InitialPos)
	if diags.HasErrors() {
		return v
	}
	v.parts, _ = partsOf(expr)
	return v
}

// partsOf splits a written expression into text and env references: env.X,
// env["X"], and templates of text and those ("${env.HOME}/data").
func partsOf(expr hclsyntax.Expression) ([]part, bool) {
	switch e := expr.(type) {
	case *hclsyntax.TemplateWrapExpr:
		return partsOf(e.Wrapped)
	case *hclsyntax.ScopeTraversalExpr:
		if name, ok := envName(e.Traversal); ok {
			return []part{{ref: name}}, true
		}
	case *hclsyntax.LiteralValueExpr:
		if e.Val.Type() == cty.String && !e.Val.IsNull() {
			return []part{{text: e.Val.AsString()}}, true
		}
	case *hclsyntax.TemplateExpr:
		var out []part
		for _, p := range e.Parts {
			ps, ok := partsOf(p)
			if !ok {
				return nil, false
			}
			out = append(out, ps...)
		}
		return out, true
	}
	return nil, false
}

// envName is X of env.X or env["X"].
func envName(t hcl.Traversal) (string, bool) {
	if len(t) != 2 || t.RootName() != "env" {
		return "", false
	}
	switch step := t[1].(type) {
	case hcl.TraverseAttr:
		return step.Name, true
	case hcl.TraverseIndex:
		if step.Key.Type() == cty.String && step.Key.IsKnown() && !step.Key.IsNull() {
			return step.Key.AsString(), true
		}
	}
	return "", false
}

// shortSource is an expression's source for a message, cut to one short
// line.
func shortSource(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// at is where the env file was written: (app, path) for places.find.
func (f envFile) at(a *hclconfig.App) (*hclconfig.App, []any) {
	if f.global {
		return nil, []any{"env_file", f.index}
	}
	return a, []any{"env_file", f.index}
}

// at is where the variable was written: (app, path) for places.find.
func (v envVar) at(a *hclconfig.App) (*hclconfig.App, []any) {
	if v.global {
		return nil, []any{"env", key(v.Name)}
	}
	return a, []any{"env", key(v.Name)}
}

// envFile is one env_file entry as written.
type envFile struct {
	written  string // as written, "-" kept
	path     string // absolute, here
	optional bool
	global   bool
	index    int // in its env_file list, for its position
}

// appEnvFiles are the app's env files, the top-level ones first.
func (r *renderer) appEnvFiles(a *hclconfig.App) []envFile {
	var out []envFile
	add := func(items []string, global bool) {
		for i, w := range items {
			name, optional := strings.CutPrefix(w, "-")
			p := name
			if !filepath.IsAbs(p) {
				p = filepath.Join(r.cfg.Dir, p)
			}
			out = append(out, envFile{written: w, path: filepath.Clean(p), optional: optional, global: global, index: i})
		}
	}
	add(r.cfg.WrittenEnvFiles, true)
	if r.cfg.Procfile {
		// foreman's .env, which clusterrun reads for a Procfile too.
		add([]string{"-.env"}, true)
	}
	add(a.Written.EnvFiles, false)
	return out
}

// fileOverrides lists the variables that an env file sets and the env
// attribute sets after it: in clusterrun the env attribute wins (a global
// env_file < env < an app's env_file < its env), in systemd the file does.
// Files that cannot be read here are skipped: this is only for a warning.
func fileOverrides(files []envFile, env []envVar) map[string]string {
	out := make(map[string]string)
	for _, f := range files {
		m, err := godotenv.Read(f.path)
		if err != nil {
			continue
		}
		for _, v := range env {
			if _, ok := m[v.Name]; ok && (f.global || !v.global) {
				out[v.Name] = f.written
			}
		}
	}
	return out
}
