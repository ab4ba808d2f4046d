package export

import (
	"fmt"
	"os"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// places finds where an attribute of the config was written, for a
// refusal's position and for telling a written value from a default. The
// Config keeps the resolved values only, so the file is read again (once,
// on first use) and walked as syntax: blocks by type and label, attributes
// by name, list elements by index, map entries by key. A Procfile has no
// attributes: everything of a line is at the line.
type places struct {
	cfg    *hclconfig.Config
	loaded bool
	body   *hclsyntax.Body // nil for a Procfile, or a file that no longer parses
}

// step is one step of a path into the file: a block type or attribute
// name (string), a list index (int), or a map key (key).
type key string

// find returns the range of the value at path inside the block of a (nil:
// the top level), and whether the path was written. When it was not, the
// range is the closest enclosing one that was (the block's header).
func (p *places) find(a *hclconfig.App, path ...any) (hcl.Range, bool) {
	var def hcl.Range
	if len(p.cfg.Apps) > 0 {
		def = p.cfg.Apps[0].DefRange
	}
	if a != nil {
		def = a.DefRange
	}
	if p.cfg.Procfile {
		return def, false
	}
	body := p.file()
	if body == nil {
		return def, false
	}
	if a != nil {
		body = block(body, "app", a.Name)
		if body == nil {
			return def, false
		}
	} else {
		def = hcl.Range{Filename: def.Filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	}
	return walk(body, def, path)
}

// findListener returns the range of attr of listener l.
func (p *places) findListener(l *hclconfig.Listener, attr string) hcl.Range {
	body := p.file()
	if body == nil || p.cfg.Procfile {
		return l.DefRange
	}
	b := block(body, "listener", l.Name)
	if b == nil {
		return l.DefRange
	}
	r, _ := walk(b, l.DefRange, []any{attr})
	return r
}

// findMetrics returns the range of the metrics block's attr.
func (p *places) findMetrics(attr string) hcl.Range {
	m := p.cfg.Metrics
	body := p.file()
	if body == nil || m == nil {
		if m != nil {
			return m.DefRange
		}
		return hcl.Range{}
	}
	for _, b := range body.Blocks {
		if b.Type == "metrics" {
			r, _ := walk(b.Body, m.DefRange, []any{attr})
			return r
		}
	}
	return m.DefRange
}

func (p *places) file() *hclsyntax.Body {
	if p.loaded {
		return p.body
	}
	p.loaded = true
	src, err := os.ReadFile(p.cfg.Path)
	if err != nil {
		return nil
	}
	name := p.cfg.Path
	if len(p.cfg.Apps) > 0 {
		name = p.cfg.Apps[0].DefRange.Filename
	}
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil
	}
	p.body, _ = f.Body.(*hclsyntax.Body)
	return p.body
}

func block(body *hclsyntax.Body, typ, label string) *hclsyntax.Body {
	for _, b := range body.Blocks {
		if b.Type == typ && len(b.Labels) > 0 && b.Labels[0] == label {
			return b.Body
		}
	}
	return nil
}

func walk(body *hclsyntax.Body, at hcl.Range, path []any) (hcl.Range, bool) {
	var expr hclsyntax.Expression
	for _, step := range path {
		switch s := step.(type) {
		case string:
			if expr != nil {
				return at, false
			}
			if attr, ok := body.Attributes[s]; ok {
				expr = attr.Expr
				at = attr.Expr.Range()
				continue
			}
			found := false
			for _, b := range body.Blocks {
				if b.Type == s {
					body, at, found = b.Body, b.DefRange(), true
					break
				}
			}
			if !found {
				return at, false
			}
		case int:
			t, ok := expr.(*hclsyntax.TupleConsExpr)
			if !ok || s >= len(t.Exprs) {
				return at, true
			}
			expr = t.Exprs[s]
			at = expr.Range()
		case key:
			o, ok := expr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				return at, true
			}
			for _, item := range o.Items {
				v, diags := item.KeyExpr.Value(nil)
				if diags.HasErrors() {
					if kw := hcl.ExprAsKeyword(item.KeyExpr); kw != "" {
						v = cty.StringVal(kw)
					} else {
						continue
					}
				}
				if v.Type() == cty.String && v.IsKnown() && !v.IsNull() && v.AsString() == string(s) {
					expr = item.ValueExpr
					at = expr.Range()
					break
				}
			}
		default:
			panic(fmt.Sprintf("export: no path step %T", step))
		}
	}
	return at, true
}

// written reports whether the app's file sets the attribute at path, such
// as ("restart", "policy"). Nothing of a Procfile line is written.
func (r *renderer) written(a *hclconfig.App, path ...any) bool {
	_, ok := r.places.find(a, path...)
	return ok
}
