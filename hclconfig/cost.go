package hclconfig

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Evaluating an expression can cost far more than the file it is written
// in: format("%0999999999d", 1) is a gigabyte, "${env.X}" repeated 80,000
// times copies a 1 MiB env value 80,000 times, replace() and join() grow
// quadratically, and nested for expressions multiply. A reload evaluates
// the file inside the live runner, so before anything is evaluated, the
// cost check below bounds, from the syntax alone (and the sizes of the env
// values), how many bytes evaluating the whole file could produce, and
// refuses the file past maxEvalBytes. The bounds are upper bounds that a
// real config stays far below; only the format function needs a check at
// run time too, when its format string is not written out.
const (
	// maxEvalBytes bounds the bytes the evaluation of a file may produce.
	maxEvalBytes = 64 << 20
	// maxFormatPad bounds a format width or precision ("%0999999999d").
	maxFormatPad = 10_000
	// saturate is where the bounds stop growing: far past every limit,
	// and far from overflowing.
	saturate = 1 << 50
)

// cost is an upper bound on a value: the bytes of its strings and of its
// numbers written out, the number of elements anywhere in it, and num, the
// digits of the longest number it is or could be converted to (the string
// "1e999" is 5 bytes, but as a number written out, 1,000 digits). A string
// whose value is not known can only be a long number through an exponent,
// so exp says whether it may hold an "e"; val is the value of a short
// string known from the file and the environment alone.
type cost struct {
	bytes int64
	count int64
	num   int64
	exp   bool
	val   *string
}

// maxKnownString bounds the strings the cost check follows by value.
const maxKnownString = 4096

func add(a, b int64) int64 { return min(a+b, saturate) }

func mul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > saturate/b {
		return saturate
	}
	return min(a*b, saturate)
}

func (c cost) plus(d cost) cost {
	return cost{bytes: add(c.bytes, d.bytes), count: add(c.count, d.count), num: max(c.num, d.num), exp: c.exp || d.exp}
}

// unknownString is the cost of a computed string of up to n bytes: as a
// number, it could be "1e999...".
func unknownString(n int64) cost {
	return cost{bytes: n, count: 1, num: pow10(n), exp: true}
}

// scalar is the cost of a value of n bytes that is no number: a bool.
func scalar(n int64) cost { return cost{bytes: n, count: 1} }

// number is the cost of a number of n digits. Written out, a number never
// has an exponent.
func number(n int64) cost { return cost{bytes: n, count: 1, num: n} }

// pow10 bounds how many digits a number written in n bytes can have:
// "1e" and n-2 nines of exponent.
func pow10(n int64) int64 {
	if n > 17 {
		return saturate
	}
	p := int64(1)
	for i := int64(2); i < n; i++ {
		p *= 10
	}
	return add(p, n)
}

// coster computes costs for one file. produced sums what evaluation would
// produce, the strings that templates, functions and for expressions build
// (a bare env.X is the env value itself, not a copy).
type coster struct {
	env      map[string]string
	envBytes int64
	envNum   int64           // the longest number an env value could be
	vars     map[string]cost // for expression variables in scope
	anon     cost            // the element a splat's traversal starts from
	produced int64
	// culprit is the innermost expression after which produced passed
	// maxEvalBytes: the one to point at.
	culprit *hcl.Range
	diags   hcl.Diagnostics
}

func newCoster(envs ...map[string]string) *coster {
	z := &coster{env: make(map[string]string), vars: make(map[string]cost)}
	for _, env := range envs {
		for k, v := range env {
			// Keep the longer value when the same name comes twice.
			if len(v) >= len(z.env[k]) {
				z.env[k] = v
			}
		}
	}
	for k, v := range z.env {
		z.envBytes = add(z.envBytes, int64(len(k)+len(v)))
		z.envNum = max(z.envNum, numberDigits(v))
	}
	return z
}

// check adds what evaluating expr could produce, and reports the
// expression that takes the file past maxEvalBytes.
func (z *coster) check(expr hcl.Expression) {
	e, ok := expr.(hclsyntax.Expression)
	if !ok || z.produced > maxEvalBytes {
		return
	}
	z.expr(e)
	if z.produced > maxEvalBytes {
		subject := z.culprit
		if subject == nil {
			subject = expr.Range().Ptr()
		}
		z.diags = append(z.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Expression too costly",
			Detail:   fmt.Sprintf("Evaluating this expression could produce more than the %d MiB of values a whole config may: it builds a very large value (a wide format, a long env variable repeated, a replace or join of large strings, nested for expressions). Write the value more directly.", maxEvalBytes>>20),
			Subject:  subject,
		})
	}
}

// checkBody checks every attribute of body and of the blocks in it.
func (z *coster) checkBody(body hcl.Body) {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return
	}
	for _, attr := range sortedAttributes(b) {
		z.check(attr.Expr)
	}
	for _, block := range b.Blocks {
		z.checkBody(block.Body)
	}
}

func sortedAttributes(b *hclsyntax.Body) []*hclsyntax.Attribute {
	attrs := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		attrs = append(attrs, a)
	}
	// Source order, so the expression reported is the first too costly.
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	return attrs
}

// produce records that evaluation builds c.bytes new bytes.
func (z *coster) produce(c cost) cost {
	z.produced = add(z.produced, c.bytes)
	return c
}

func (z *coster) expr(e hclsyntax.Expression) cost {
	c := z.node(e)
	if z.produced > maxEvalBytes && z.culprit == nil {
		z.culprit = e.Range().Ptr()
	}
	return c
}

func (z *coster) node(e hclsyntax.Expression) cost {
	switch e := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		c := valueCost(e.Val)
		if e.Val.Type() == cty.Number {
			// Used where a string is wanted, it is written out.
			z.produce(c)
		}
		return c
	case *hclsyntax.TemplateExpr:
		var c cost
		known := true
		var b strings.Builder
		for _, p := range e.Parts {
			pc := z.expr(p)
			c = c.plus(pc)
			if known && pc.val != nil && int64(b.Len()+len(*pc.val)) <= maxKnownString {
				b.WriteString(*pc.val)
			} else {
				known = false
			}
		}
		if known {
			return z.produce(stringCost(b.String()))
		}
		t := cost{bytes: c.bytes, count: 1, num: add(c.bytes, 2), exp: c.exp}
		if c.exp {
			t.num = pow10(c.bytes)
		}
		return z.produce(t)
	case *hclsyntax.TemplateWrapExpr:
		return z.expr(e.Wrapped)
	case *hclsyntax.TemplateJoinExpr:
		t := z.expr(e.Tuple)
		return z.produce(unknownString(t.bytes))
	case *hclsyntax.ScopeTraversalExpr:
		return z.traversal(e.Traversal)
	case *hclsyntax.RelativeTraversalExpr:
		return z.expr(e.Source)
	case *hclsyntax.IndexExpr:
		z.expr(e.Key)
		return z.expr(e.Collection)
	case *hclsyntax.SplatExpr:
		src := z.expr(e.Source)
		saved := z.anon
		z.anon = src
		z.expr(e.Each)
		z.anon = saved
		return src
	case *hclsyntax.AnonSymbolExpr:
		return z.anon
	case *hclsyntax.ParenthesesExpr:
		return z.expr(e.Expression)
	case *hclsyntax.ConditionalExpr:
		z.expr(e.Condition)
		t, f := z.expr(e.TrueResult), z.expr(e.FalseResult)
		return cost{bytes: max(t.bytes, f.bytes), count: max(t.count, f.count), num: max(t.num, f.num), exp: t.exp || f.exp}
	case *hclsyntax.UnaryOpExpr:
		v := z.expr(e.Val)
		if e.Op == hclsyntax.OpNegate {
			return z.produce(number(add(v.num, 1)))
		}
		return scalar(5)
	case *hclsyntax.BinaryOpExpr:
		// Arithmetic converts its operands to numbers, and a number can
		// be written out where a string is wanted: it counts as produced.
		l, r := z.expr(e.LHS).num, z.expr(e.RHS).num
		switch e.Op {
		case hclsyntax.OpAdd, hclsyntax.OpSubtract, hclsyntax.OpModulo:
			return z.produce(number(add(max(l, r), 1)))
		case hclsyntax.OpMultiply:
			return z.produce(number(add(l, r)))
		case hclsyntax.OpDivide:
			// A quotient has as many digits as the operands together,
			// and up to the 512 bits of precision cty keeps.
			return z.produce(number(add(add(l, r), 160)))
		}
		return scalar(5) // comparisons and logic: a bool
	case *hclsyntax.TupleConsExpr:
		c := cost{}
		for _, x := range e.Exprs {
			c = c.plus(z.expr(x))
		}
		return c
	case *hclsyntax.ObjectConsExpr:
		c := cost{}
		for _, item := range e.Items {
			c = c.plus(z.expr(item.KeyExpr)).plus(z.expr(item.ValueExpr))
		}
		return c
	case *hclsyntax.ObjectConsKeyExpr:
		if name := hcl.ExprAsKeyword(e.Wrapped); name != "" && !e.ForceNonLiteral {
			return stringCost(name)
		}
		return z.expr(e.Wrapped)
	case *hclsyntax.ForExpr:
		return z.forExpr(e)
	case *hclsyntax.FunctionCallExpr:
		return z.call(e)
	}
	return cost{}
}

// traversal is env.X (the value's own size), env (all of it), or a for
// expression's variable.
func (z *coster) traversal(t hcl.Traversal) cost {
	root := t.RootName()
	if c, ok := z.vars[root]; ok {
		return c
	}
	if root != "env" {
		return cost{} // an unknown variable fails to evaluate
	}
	if len(t) < 2 {
		return cost{bytes: z.envBytes, count: add(int64(len(z.env)), 1), num: z.envNum, exp: true}
	}
	var name string
	switch step := t[1].(type) {
	case hcl.TraverseAttr:
		name = step.Name
	case hcl.TraverseIndex:
		if step.Key.Type() != cty.String || !step.Key.IsKnown() || step.Key.IsNull() {
			return cost{bytes: z.envBytes, count: 1, num: z.envNum, exp: true}
		}
		name = step.Key.AsString()
	}
	return stringCost(z.env[name])
}

// forExpr: the body is evaluated once per element, so what it produces
// counts that many times.
func (z *coster) forExpr(e *hclsyntax.ForExpr) cost {
	coll := z.expr(e.CollExpr)
	n := max(coll.count, 1)
	saved := make(map[string]cost, 2)
	for _, name := range []string{e.KeyVar, e.ValVar} {
		if name == "" {
			continue
		}
		if old, ok := z.vars[name]; ok {
			saved[name] = old
		}
		z.vars[name] = coll
	}
	before := z.produced
	var body cost
	if e.KeyExpr != nil {
		body = body.plus(z.expr(e.KeyExpr))
	}
	body = body.plus(z.expr(e.ValExpr))
	if e.CondExpr != nil {
		z.expr(e.CondExpr)
	}
	z.produced = add(before, mul(z.produced-before, n))
	for _, name := range []string{e.KeyVar, e.ValVar} {
		delete(z.vars, name)
	}
	for name, c := range saved {
		z.vars[name] = c
	}
	return z.produce(cost{bytes: mul(body.bytes, n), count: mul(max(body.count, 1), n), num: body.num, exp: body.exp})
}

// call bounds a call of one of the curated functions.
func (z *coster) call(e *hclsyntax.FunctionCallExpr) cost {
	args := make([]cost, len(e.Args))
	var sum cost
	for i, a := range e.Args {
		args[i] = z.expr(a)
		sum = sum.plus(args[i])
	}
	arg := func(i int) cost {
		if i < len(args) {
			return args[i]
		}
		return cost{}
	}
	var c cost
	switch e.Name {
	case "length", "contains":
		c = number(20)
	case "tonumber", "max", "min":
		c = number(sum.num)
	case "tostring":
		c = cost{bytes: max(sum.bytes, sum.num), count: 1, num: sum.num, exp: sum.exp}
	case "lower", "upper", "title":
		// Case mapping can turn one byte into up to three.
		c = unknownString(mul(arg(0).bytes, 3))
	case "split":
		c = unknownString(arg(1).bytes)
		c.count = add(arg(1).bytes, 1)
	case "replace":
		// Every position of the string can take the replacement.
		s := arg(0).bytes
		c = unknownString(add(s, mul(add(s, 1), arg(2).bytes)))
	case "join":
		var lists cost
		for _, a := range args[min(1, len(args)):] {
			lists = lists.plus(a)
		}
		c = unknownString(add(lists.bytes, mul(arg(0).bytes, lists.count)))
	case "format":
		c = unknownString(z.formatCost(e, args))
	case "trim", "trimprefix", "trimspace", "trimsuffix", "substr":
		c = unknownString(arg(0).bytes)
	case "keys", "values", "coalesce", "lookup", "merge", "concat":
		c = sum
		c.val = nil
	default:
		return cost{} // an unknown function fails to evaluate
	}
	return z.produce(c)
}

// formatCost bounds format(): each verb prints an argument, padded to its
// width or precision. A format string that is not written out is bounded
// at run time instead, by the wrapped function.
func (z *coster) formatCost(e *hclsyntax.FunctionCallExpr, args []cost) int64 {
	if len(e.Args) == 0 {
		return 0
	}
	var widest int64
	for _, a := range args[1:] {
		widest = max(widest, add(max(a.bytes, a.num), mul(a.count, 4)))
	}
	v, diags := e.Args[0].Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
		return maxFormatOutput
	}
	f := v.AsString()
	verbs, pads := formatVerbs(f)
	return add(int64(len(f)), add(mul(verbs, widest), pads))
}

// maxFormatOutput bounds what one format call with a computed format
// string may produce; wrappedFormat enforces it.
const maxFormatOutput = 1 << 20

// formatVerbs counts the verbs of a format string and sums their widths
// and precisions.
func formatVerbs(f string) (verbs, pads int64) {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		verbs++
		for i < len(f) && !isVerbLetter(f[i]) {
			if f[i] >= '0' && f[i] <= '9' {
				j := i
				for j < len(f) && f[j] >= '0' && f[j] <= '9' {
					j++
				}
				n, err := strconv.ParseInt(f[i:j], 10, 64)
				if err != nil {
					n = saturate
				}
				pads = add(pads, n)
				i = j
				continue
			}
			i++
		}
	}
	return verbs, pads
}

func isVerbLetter(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// wrappedFormat is stdlib's format with the padding of every verb bounded,
// for a format string computed at run time, which the cost check cannot
// see.
var wrappedFormat = function.New(&function.Spec{
	Description: stdlib.FormatFunc.Description(),
	Params:      stdlib.FormatFunc.Params(),
	VarParam:    stdlib.FormatFunc.VarParam(),
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
		if len(args) > 0 && args[0].IsKnown() && !args[0].IsNull() {
			f := args[0].AsString()
			verbs, pads := formatVerbs(f)
			var widest int64
			for _, a := range args[1:] {
				c := valueCost(a)
				widest = max(widest, add(max(c.bytes, c.num), mul(c.count, 4)))
			}
			if n := add(int64(len(f)), add(mul(verbs, widest), pads)); n > maxFormatOutput {
				return cty.NilVal, function.NewArgErrorf(0, "this format could produce %s bytes, more than the %d KiB a format call may", thousands(n), maxFormatOutput>>10)
			}
			if pads > maxFormatPad {
				return cty.NilVal, function.NewArgErrorf(0, "a width or precision in this format is larger than %d", maxFormatPad)
			}
		}
		return stdlib.FormatFunc.Call(args)
	},
})

// valueCost is the cost of a known value.
func valueCost(v cty.Value) cost {
	if !v.IsKnown() || v.IsNull() {
		return scalar(0)
	}
	v, _ = v.Unmark()
	t := v.Type()
	switch {
	case t == cty.String:
		return stringCost(v.AsString())
	case t == cty.Number:
		return number(floatDigits(v.AsBigFloat()))
	case t == cty.Bool:
		return scalar(5)
	case t.IsListType() || t.IsSetType() || t.IsTupleType() || t.IsMapType() || t.IsObjectType():
		c := cost{}
		for it := v.ElementIterator(); it.Next(); {
			k, el := it.Element()
			c = c.plus(valueCost(k)).plus(valueCost(el))
		}
		return c
	}
	return scalar(0)
}

// stringCost is a string's size, and, when it reads as a number (which
// arithmetic or a conversion would turn it into), that number's.
func stringCost(s string) cost {
	c := cost{bytes: int64(len(s)), count: 1, num: numberDigits(s), exp: strings.ContainsAny(s, "eE")}
	if len(s) <= maxKnownString {
		c.val = &s
	}
	return c
}

// floatDigits bounds how long f is written out in full, cheaply: writing
// the shortest form of a 512-bit float takes tens of microseconds.
func floatDigits(f *big.Float) int64 {
	if i, acc := f.Int64(); acc == big.Exact {
		return int64(len(strconv.FormatInt(i, 10)))
	}
	// Binary exponent e is about 0.3e decimal digits, and the 512 bits of
	// mantissa cty keeps are at most 155 more.
	exp := int64(f.MantExp(nil))
	if exp < 0 {
		exp = -exp
	}
	return add(exp*31/100+1, 160)
}

// numberDigits is how long the number s is written out in full ("1e5" is
// 100000), or 0 when s is not a number.
func numberDigits(s string) int64 {
	s = strings.TrimSpace(s)
	s = strings.TrimLeft(s, "+-")
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if mant == "" || strings.Trim(mant, "0123456789.") != "" || strings.Count(mant, ".") > 1 {
		return 0
	}
	n := int64(len(mant)) + 2
	if hasExp {
		digits := strings.TrimLeft(exp, "+-")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return 0
		}
		e, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || e > math.MaxInt32 {
			return saturate
		}
		n = add(n, e)
	}
	return n
}
