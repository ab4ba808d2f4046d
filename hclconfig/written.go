package hclconfig

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// writtenVars turns the entries of an env attribute into what export and
// init need: the resolved value beside the source text and the env
// variables it reads. src is the file the expressions were parsed from.
func writtenVars(items []stringItem, src []byte) []WrittenVar {
	if len(items) == 0 {
		return nil
	}
	out := make([]WrittenVar, 0, len(items))
	for _, it := range items {
		out = append(out, WrittenVar{
			Name:    it.key,
			Value:   it.val,
			Source:  sourceText(src, it.expr.Range()),
			Literal: isConstant(it.expr),
			Refs:    envRefs(it.expr),
		})
	}
	return out
}

// sourceText is the text of r in src, or "" when r does not lie in it.
func sourceText(src []byte, r hcl.Range) string {
	if r.Start.Byte < 0 || r.Start.Byte > r.End.Byte || r.End.Byte > len(src) {
		return ""
	}
	return string(src[r.Start.Byte:r.End.Byte])
}

// isConstant reports whether expr has no variables and calls no function,
// so its value is the same on every machine.
func isConstant(expr hcl.Expression) bool {
	if len(expr.Variables()) > 0 {
		return false
	}
	node, ok := expr.(hclsyntax.Node)
	if !ok {
		return false
	}
	constant := true
	hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		if _, call := n.(*hclsyntax.FunctionCallExpr); call {
			constant = false
		}
		return nil
	})
	return constant
}

// envRefs lists the env variables expr reads: env.X, env["X"], and the
// name in lookup(env, "X", default), which is how a file says "X, or this
// default" and which export can render as ${X:-default}.
func envRefs(expr hcl.Expression) []string {
	seen := make(map[string]bool)
	wholeEnv := false
	for _, t := range expr.Variables() {
		if t.RootName() != "env" {
			continue
		}
		if len(t) < 2 {
			wholeEnv = true
			continue
		}
		switch step := t[1].(type) {
		case hcl.TraverseAttr:
			seen[step.Name] = true
		case hcl.TraverseIndex:
			if step.Key.Type() == cty.String && step.Key.IsKnown() && !step.Key.IsNull() {
				seen[step.Key.AsString()] = true
			}
		}
	}
	if node, ok := expr.(hclsyntax.Node); ok && wholeEnv {
		hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
			call, ok := n.(*hclsyntax.FunctionCallExpr)
			if !ok || call.Name != "lookup" || len(call.Args) < 2 {
				return nil
			}
			if st, ok := call.Args[0].(*hclsyntax.ScopeTraversalExpr); !ok || len(st.Traversal) != 1 || st.Traversal.RootName() != "env" {
				return nil
			}
			if !isConstant(call.Args[1]) {
				return nil
			}
			if v, diags := call.Args[1].Value(nil); !diags.HasErrors() && v.Type() == cty.String && !v.IsNull() {
				seen[v.AsString()] = true
			}
			return nil
		})
	}
	if len(seen) == 0 {
		return nil
	}
	refs := make([]string, 0, len(seen))
	for k := range seen {
		refs = append(refs, k)
	}
	sort.Strings(refs)
	return refs
}
