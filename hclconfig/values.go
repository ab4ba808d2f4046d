package hclconfig

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// evaluator turns attribute expressions into Go values. Every attribute of
// the raw structs is an hcl.Expression, so that each value is evaluated here
// exactly once, with one set of messages, and every diagnostic about a value
// carries the expression (the text writer then prints "with env.X as ...").
//
// The helpers return ok=false both when the attribute is absent and when it
// was wrong; in the second case they have already added a diagnostic, and the
// caller keeps its default so that later checks do not pile on.
type evaluator struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
}

func (e *evaluator) errorf(expr hcl.Expression, summary, format string, args ...any) {
	e.diags = append(e.diags, exprError(expr, e.ctx, summary, fmt.Sprintf(format, args...)))
}

func exprError(expr hcl.Expression, ctx *hcl.EvalContext, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity:    hcl.DiagError,
		Summary:     summary,
		Detail:      detail,
		Subject:     expr.Range().Ptr(),
		Expression:  expr,
		EvalContext: ctx,
	}
}

// absent reports whether an attribute was left out (gohcl hands over a
// static null for a missing hcl.Expression field) or set to null.
func absent(expr hcl.Expression) bool {
	if expr == nil {
		return true
	}
	v, diags := expr.Value(nil)
	return !diags.HasErrors() && v.IsNull()
}

// value evaluates expr. It returns a null value and true for an absent
// attribute, and false when evaluation failed.
func (e *evaluator) value(expr hcl.Expression) (cty.Value, bool) {
	if expr == nil {
		return cty.NullVal(cty.DynamicPseudoType), true
	}
	v, diags := expr.Value(e.ctx)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		// Nothing in our EvalContext is unknown, so this means hcl gave up
		// without saying why; say something rather than load a half value.
		e.errorf(expr, "Value cannot be determined", "This value cannot be determined when the file is loaded.")
		return cty.NilVal, false
	}
	v, _ = v.UnmarkDeep()
	return v, true
}

// typeName is a type as a user thinks of it: HCL's [..] is a "tuple" and
// {..} an "object" in cty, but a list and a map to whoever wrote them.
func typeName(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsListType(), t.IsTupleType(), t.IsSetType():
		return "a list"
	case t.IsMapType(), t.IsObjectType():
		return "a map"
	default:
		return t.FriendlyName()
	}
}

// toString converts a primitive to its string form: numbers and bools are
// accepted where a string is wanted, as everywhere in HCL.
func toString(v cty.Value) (string, bool) {
	if v.IsNull() || !v.Type().IsPrimitiveType() {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		return "", false
	}
	return s.AsString(), true
}

// str evaluates a string attribute.
func (e *evaluator) str(expr hcl.Expression, name string) (string, bool) {
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return "", false
	}
	s, ok := toString(v)
	if !ok {
		e.errorf(expr, "Incorrect value type", "The %s attribute must be a string, but this is %s.", name, typeName(v.Type()))
		return "", false
	}
	return s, true
}

// boolean evaluates a bool attribute; "true" and "false" strings convert.
func (e *evaluator) boolean(expr hcl.Expression, name string) (bool, bool) {
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return false, false
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil || b.IsNull() {
		e.errorf(expr, "Incorrect value type", "The %s attribute must be true or false, but this is %s.", name, shown(v))
		return false, false
	}
	return b.True(), true
}

// integer evaluates a whole number in [lo, hi]. Numeric strings convert, so
// a value can come from the environment: instances = env.WORKERS.
func (e *evaluator) integer(expr hcl.Expression, summary, name, rule string, lo, hi int) (int, bool) {
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return 0, false
	}
	return e.wholeNumber(expr, v, summary, name, rule, lo, hi)
}

func (e *evaluator) wholeNumber(expr hcl.Expression, v cty.Value, summary, name, rule string, lo, hi int) (int, bool) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		e.errorf(expr, summary, "The %s must be %s, but this is %s.", name, rule, shown(v))
		return 0, false
	}
	f := n.AsBigFloat()
	if !f.IsInt() || f.Cmp(big.NewFloat(float64(lo))) < 0 || f.Cmp(big.NewFloat(float64(hi))) > 0 {
		e.errorf(expr, summary, "The %s must be %s, but this is %s.", name, rule, shown(v))
		return 0, false
	}
	i, _ := f.Int64()
	return int(i), true
}

// shown renders a value for a message: strings quoted, numbers as written,
// anything else by its type.
func shown(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Type() == cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case v.Type() == cty.Number:
		// Written out, a number of a huge exponent (from a string such as
		// "1e99999999") takes minutes; its size is what the message needs.
		f := v.AsBigFloat()
		if e := f.MantExp(nil); e > 3000 || e < -3000 {
			return fmt.Sprintf("a number of about 10^%d", int(float64(e)*math.Log10(2)))
		}
		return f.Text('g', 15)
	case v.Type() == cty.Bool:
		return fmt.Sprint(v.True())
	default:
		return typeName(v.Type())
	}
}

// stringItem is one string from a list or map, with the expression that
// produced it, so a diagnostic about one element points at that element.
type stringItem struct {
	key  string // for map entries
	val  string
	expr hcl.Expression
	ctx  *hcl.EvalContext
}

func (it stringItem) errorf(summary, detail string) *hcl.Diagnostic {
	return exprError(it.expr, it.ctx, summary, detail)
}

func (it stringItem) rng() hcl.Range { return it.expr.Range() }

// stringList evaluates a list of strings. A literal list is evaluated element
// by element so that each item keeps its own range; anything else (a function
// call, a variable) is evaluated whole and its items share its range.
func (e *evaluator) stringList(expr hcl.Expression, name string) ([]stringItem, bool) {
	if absent(expr) {
		return nil, false
	}
	if elems, diags := hcl.ExprList(expr); !diags.HasErrors() {
		items := make([]stringItem, 0, len(elems))
		good := true
		for _, el := range elems {
			v, ok := e.value(el)
			if !ok {
				good = false
				continue
			}
			s, ok := toString(v)
			if !ok {
				e.errorf(el, "Incorrect value type", "Each element of %s must be a string, but this is %s.", name, typeName(v.Type()))
				good = false
				continue
			}
			items = append(items, stringItem{val: s, expr: el, ctx: e.ctx})
		}
		return items, good
	}
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return nil, false
	}
	t := v.Type()
	if !t.IsListType() && !t.IsTupleType() && !t.IsSetType() {
		e.errorf(expr, "Incorrect value type", "The %s attribute must be a list of strings, such as [\"a\", \"b\"], but this is %s.", name, typeName(t))
		return nil, false
	}
	var items []stringItem
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		s, ok := toString(el)
		if !ok {
			e.errorf(expr, "Incorrect value type", "Each element of %s must be a string, but one is %s.", name, typeName(el.Type()))
			return nil, false
		}
		items = append(items, stringItem{val: s, expr: expr, ctx: e.ctx})
	}
	return items, true
}

// envMap evaluates an env attribute: a map whose values are strings, numbers
// or bools, all passed to the app as strings.
func (e *evaluator) envMap(expr hcl.Expression, name string) ([]stringItem, bool) {
	if absent(expr) {
		return nil, false
	}
	var items []stringItem
	good := true
	add := func(kexpr, vexpr hcl.Expression, k string, v cty.Value) {
		s, ok := toString(v)
		switch {
		case v.IsNull():
			e.errorf(vexpr, "Invalid environment value", "The value of %s in %s is null. Give it a value, or remove the entry to leave the variable unset.", k, name)
		case !ok:
			e.errorf(vexpr, "Invalid environment value", "The value of %s in %s must be a string, number or bool, but it is %s.", k, name, typeName(v.Type()))
		case !validEnvKey(k):
			e.errorf(kexpr, "Invalid environment variable name", "The name %q cannot be an environment variable: a name must be non-empty and contain no \"=\" and no NUL byte.", k)
		case strings.ContainsRune(s, 0):
			e.errorf(vexpr, "Invalid environment value", "The value of %s contains a NUL byte, which an environment variable cannot hold.", k)
		default:
			items = append(items, stringItem{key: k, val: s, expr: vexpr, ctx: e.ctx})
			return
		}
		good = false
	}

	if pairs, diags := hcl.ExprMap(expr); !diags.HasErrors() {
		seen := make(map[string]hcl.Range)
		for _, p := range pairs {
			kv, ok1 := e.value(p.Key)
			vv, ok2 := e.value(p.Value)
			if !ok1 || !ok2 {
				good = false
				continue
			}
			k, ok := toString(kv)
			if !ok {
				e.errorf(p.Key, "Invalid environment variable name", "An environment variable name must be a string, but this is %s.", typeName(kv.Type()))
				good = false
				continue
			}
			if prev, dup := seen[k]; dup {
				e.errorf(p.Key, "Duplicate environment variable", "%s is already set in this map at %s. Set each variable once.", k, posString(prev))
				good = false
				continue
			}
			seen[k] = p.Key.Range()
			add(p.Key, p.Value, k, vv)
		}
		return items, good
	}

	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return nil, false
	}
	t := v.Type()
	if !t.IsMapType() && !t.IsObjectType() {
		e.errorf(expr, "Incorrect value type", "The %s attribute must be a map, such as { LOG_LEVEL = \"info\" }, but this is %s.", name, typeName(t))
		return nil, false
	}
	for it := v.ElementIterator(); it.Next(); {
		k, el := it.Element()
		add(expr, expr, k.AsString(), el)
	}
	return items, good
}

func validEnvKey(k string) bool {
	return k != "" && !strings.ContainsAny(k, "=\x00")
}

// durationRule says which durations an attribute accepts.
type durationRule int

const (
	nonNegative durationRule = iota // zero means "none" or "at once"
	positive                        // zero would make no sense: a timeout, a window
)

// duration evaluates a Go-syntax duration string.
func (e *evaluator) duration(expr hcl.Expression, name string, rule durationRule) (time.Duration, bool) {
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return 0, false
	}
	if v.Type() == cty.Number {
		n := shown(v)
		e.errorf(expr, "Invalid duration", "The %s is the bare number %s, which has no unit. Write it as a string with a unit, such as \"%ss\" for seconds or \"%sms\" for milliseconds.", name, n, n, n)
		return 0, false
	}
	s, ok := toString(v)
	if !ok {
		e.errorf(expr, "Invalid duration", "The %s must be a duration string such as \"30s\", but this is %s.", name, typeName(v.Type()))
		return 0, false
	}
	d, err := parseDuration(s)
	switch {
	case err != nil:
		e.errorf(expr, "Invalid duration", "%s", err)
		return 0, false
	case d < 0:
		e.errorf(expr, "Invalid duration", "The %s is %q, but it cannot be negative. Write a duration such as \"30s\".", name, s)
		return 0, false
	case d == 0 && rule == positive:
		e.errorf(expr, "Invalid duration", "The %s is %q, but it must be longer than zero. Write a duration such as \"30s\".", name, s)
		return 0, false
	}
	return d, true
}

// size evaluates a memory size: a string with a unit, or a number of bytes.
func (e *evaluator) size(expr hcl.Expression, name string) (int64, bool) {
	v, ok := e.value(expr)
	if !ok || v.IsNull() {
		return 0, false
	}
	if v.Type() == cty.Number {
		f := v.AsBigFloat()
		if !f.IsInt() || f.Sign() < 0 || f.Cmp(big.NewFloat(math.MaxInt64)) >= 0 {
			e.errorf(expr, "Invalid size", "The %s is %s, but a number of bytes must be a whole number of at least 0. %s", name, shown(v), sizeExamples)
			return 0, false
		}
		n, _ := f.Int64()
		return n, true
	}
	s, ok := toString(v)
	if !ok {
		e.errorf(expr, "Invalid size", "The %s must be a size such as \"512MiB\", but this is %s.", name, typeName(v.Type()))
		return 0, false
	}
	n, err := parseSize(s)
	if err != nil {
		e.errorf(expr, "Invalid size", "%s", err)
		return 0, false
	}
	return n, true
}
