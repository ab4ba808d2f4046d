package hclconfig

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// maxShownDiagnostics is how many diagnostics WriteDiagnostics renders; the
// rest are counted in one line. A file with thousands of errors has one
// mistake repeated, and rendering each would take longer than fixing it.
const maxShownDiagnostics = 20

// A snippet line longer than maxSnippetLine bytes is cut to the subject and
// snippetMargin bytes on either side.
const (
	maxSnippetLine = 512
	snippetMargin  = 120
)

// WriteDiagnostics renders diags with hcl's text writer: one block per
// diagnostic with a source snippet and the detail, its first line prefixed
// with FILE:LINE:COL: so editors and terminals can jump to it. Only the
// first 20 are rendered, then a line such as "… and 4,980 more errors".
// width wraps the detail text (0 = no wrapping); color adds terminal
// highlighting. files must be the map Load returned, or the snippets are
// left out.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint, color bool) error {
	var buf bytes.Buffer
	shown := diags
	if len(shown) > maxShownDiagnostics {
		shown = shown[:maxShownDiagnostics]
	}
	short := make(map[*hcl.EvalContext]*hcl.EvalContext)
	for _, d := range shown {
		buf.Reset()
		if ctx := d.EvalContext; ctx != nil {
			// The writer shows the values of the variables the expression
			// reads ("with env.X as ..."); a long one is cut.
			if short[ctx] == nil {
				short[ctx] = shortContext(ctx)
			}
			c := *d
			c.EvalContext = short[ctx]
			d = &c
		}
		if err := writeDiagnostic(&buf, files, d, width, color); err != nil {
			return err
		}
		out := buf.Bytes()
		if d.Subject != nil {
			pos := fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
			out = append([]byte(pos), out...)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	if rest := diags[len(shown):]; len(rest) > 0 {
		if _, err := io.WriteString(w, moreLine(rest)+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// moreLine counts the diagnostics that were not rendered.
func moreLine(rest hcl.Diagnostics) string {
	var errs, warnings int64
	for _, d := range rest {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warnings++
		}
	}
	count := func(n int64, what string) string {
		if n == 1 {
			return "1 more " + what
		}
		return thousands(n) + " more " + what + "s"
	}
	switch {
	case errs > 0 && warnings > 0:
		return "… and " + count(errs, "error") + " and " + count(warnings, "warning")
	case errs > 0:
		return "… and " + count(errs, "error")
	default:
		return "… and " + count(warnings, "warning")
	}
}

// writeDiagnostic renders one diagnostic exactly as hcl's text writer does,
// in time that does not grow with the file. hcl's writer scans the whole
// file, a few microseconds per line, to print the one or two lines of the
// snippet, which made a 50,000-line file take 0.2 s per diagnostic. This
// hands it only the lines the snippet shows, then puts the real line
// numbers back into its output.
func writeDiagnostic(w *bytes.Buffer, files map[string]*hcl.File, d *hcl.Diagnostic, width uint, color bool) error {
	f := (*hcl.File)(nil)
	if d.Subject != nil {
		f = files[d.Subject.Filename]
	}
	if f == nil || f.Bytes == nil {
		return hcl.NewDiagnosticTextWriter(w, files, width, color).WriteDiagnostic(d)
	}
	src := f.Bytes
	snip := *d.Subject
	if d.Context != nil {
		snip = hcl.RangeOver(snip, *d.Context)
	}
	startByte := min(max(snip.Start.Byte, 0), len(src))
	endByte := min(max(snip.End.Byte, startByte+1), len(src))
	lineStart := bytes.LastIndexByte(src[:startByte], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[endByte:], '\n'); i >= 0 {
		lineEnd = endByte + i
	}
	firstLine := bytes.Count(src[:lineStart], []byte{'\n'}) + 1
	if firstLine != snip.Start.Line || d.Subject.Start.Byte < lineStart || d.Subject.Start.Byte > len(src) {
		// A range whose line and byte disagree: let hcl's writer make
		// sense of it the slow way.
		return hcl.NewDiagnosticTextWriter(w, files, width, color).WriteDiagnostic(d)
	}

	// A very long line (a minified or hostile file) is cut to a window
	// around the subject, marked with "…", rather than printed whole.
	frag := src[lineStart:lineEnd]
	base := lineStart // the offset in src of frag's first byte
	subject, context := d.Subject, d.Context
	if len(frag) > maxSnippetLine {
		context = nil
		from := max(subject.Start.Byte-snippetMargin, lineStart)
		to := min(max(subject.End.Byte, subject.Start.Byte+1)+snippetMargin, subject.Start.Byte+maxSnippetLine-snippetMargin, len(src))
		if i := bytes.IndexByte(src[subject.Start.Byte:to], '\n'); i >= 0 {
			to = subject.Start.Byte + i
		}
		for from > lineStart && !utf8.RuneStart(src[from]) {
			from--
		}
		for to > from && to < len(src) && !utf8.RuneStart(src[to]) {
			to--
		}
		var b []byte
		if from > lineStart {
			b = append(b, "…"...)
		}
		base = from - len(b)
		b = append(b, src[from:to]...)
		if to < lineEnd {
			b = append(b, "…"...)
		}
		frag = b
	}

	shift := func(r *hcl.Range) *hcl.Range {
		if r == nil {
			return nil
		}
		c := *r
		c.Start.Byte -= base
		c.End.Byte -= base
		c.Start.Line -= firstLine - 1
		c.End.Line -= firstLine - 1
		return &c
	}
	shifted := *d
	shifted.Subject = shift(subject)
	shifted.Context = shift(context)
	files = map[string]*hcl.File{d.Subject.Filename: {
		Body:  f.Body,
		Bytes: frag,
		Nav:   fixedContext(contextOf(f, d.Subject.Start.Byte)),
	}}
	var out bytes.Buffer
	if err := hcl.NewDiagnosticTextWriter(&out, files, width, color).WriteDiagnostic(&shifted); err != nil {
		return err
	}

	// Put the real line numbers back: in the "on FILE line N" line, and
	// in front of each snippet line that follows it.
	text := out.String()
	onOld := fmt.Sprintf("  on %s line %d", d.Subject.Filename, shifted.Subject.Start.Line)
	onNew := fmt.Sprintf("  on %s line %d", d.Subject.Filename, d.Subject.Start.Line)
	i := strings.Index(text, onOld)
	if i < 0 {
		w.WriteString(text)
		return nil
	}
	w.WriteString(text[:i])
	w.WriteString(onNew)
	text = text[i+len(onOld):]
	nl := strings.IndexByte(text, '\n')
	if nl < 0 {
		w.WriteString(text)
		return nil
	}
	w.WriteString(text[:nl+1])
	text = text[nl+1:]
	for n := 1; ; n++ {
		prefix := fmt.Sprintf("%4d: ", n)
		if !strings.HasPrefix(text, prefix) {
			break
		}
		fmt.Fprintf(w, "%4d: ", n+firstLine-1)
		text = text[len(prefix):]
		nl := strings.IndexByte(text, '\n')
		if nl < 0 {
			break
		}
		w.WriteString(text[:nl+1])
		text = text[nl+1:]
	}
	w.WriteString(text)
	return nil
}

// maxShownValue is how much of a variable's value a diagnostic shows.
const maxShownValue = 200

// shortContext returns ctx with every string variable (and every string in
// an object variable, such as env) longer than maxShownValue cut short.
func shortContext(ctx *hcl.EvalContext) *hcl.EvalContext {
	out := *ctx
	out.Variables = make(map[string]cty.Value, len(ctx.Variables))
	for name, v := range ctx.Variables {
		out.Variables[name] = shortValue(v)
	}
	return &out
}

func shortValue(v cty.Value) cty.Value {
	if !v.IsKnown() || v.IsNull() || v.IsMarked() {
		return v
	}
	switch t := v.Type(); {
	case t == cty.String:
		if s := v.AsString(); len(s) > maxShownValue {
			cut := maxShownValue
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			return cty.StringVal(s[:cut] + "…")
		}
	case t.IsObjectType():
		attrs := make(map[string]cty.Value, len(t.AttributeTypes()))
		for it := v.ElementIterator(); it.Next(); {
			k, el := it.Element()
			attrs[k.AsString()] = shortValue(el)
		}
		return cty.ObjectVal(attrs)
	}
	return v
}

// contextOf is the "in app \"web\"" part of a snippet header, as hcl's
// writer finds it from the file's navigation.
func contextOf(f *hcl.File, offset int) string {
	if nav, ok := f.Nav.(interface{ ContextString(int) string }); ok {
		return nav.ContextString(offset)
	}
	return ""
}

// fixedContext is a file navigation that knows one answer: the context
// computed from the real file before it was cut to a snippet.
type fixedContext string

func (c fixedContext) ContextString(int) string { return string(c) }

// posString is a position as the other messages write it: FILE:LINE,COL.
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// SortDiagnostics orders diags by where they point, so that a file's
// problems read top to bottom and the order never depends on map iteration
// (gohcl walks its attributes and blocks through maps).
func SortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}

// didYouMean suggests the option closest to a mistyped value, or returns ""
// when none is close enough to be a typo.
func didYouMean(given string, options ...string) string {
	return didYouMeanExcept(given, options, "")
}

// didYouMeanExcept is didYouMean over the options other than except.
func didYouMeanExcept(given string, options []string, except string) string {
	given = strings.ToLower(given)
	n := utf8.RuneCountInString(given)
	best, bestDist := "", 3
	for _, o := range options {
		if o == except && except != "" {
			continue
		}
		if given != "" && strings.HasPrefix(o, given) {
			// A cut-short value ("on-fail") is as clear a slip as a typo.
			return fmt.Sprintf(" Did you mean %q?", o)
		}
		// The distance is at least the difference in length: most
		// options are ruled out without computing it.
		if diff := utf8.RuneCountInString(o) - n; diff >= bestDist || -diff >= bestDist {
			continue
		}
		if d := editDistance(given, o); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, by runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Nothing that long is a typo of a short keyword.
		return 1 << 30
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// DidYouMean is didYouMean for the rest of clusterrun: the API and the
// CLI name the app a user probably meant the way check does (" Did you
// mean "web"?", or "").
func DidYouMean(given string, options ...string) string { return didYouMean(given, options...) }
