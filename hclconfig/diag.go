package hclconfig

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics renders diags with hcl's text writer: one block per
// diagnostic with a source snippet and the detail, its first line prefixed
// with FILE:LINE:COL: so editors and terminals can jump to it. width wraps
// the detail text (0 = no wrapping); color adds terminal highlighting. files
// must be the map Load returned, or the snippets are left out.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint, color bool) error {
	var buf bytes.Buffer
	dw := hcl.NewDiagnosticTextWriter(&buf, files, width, color)
	for _, d := range diags {
		buf.Reset()
		if err := dw.WriteDiagnostic(d); err != nil {
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
	return nil
}

// posString is a position as the other messages write it: FILE:LINE,COL.
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// sortDiagnostics orders diags by where they point, so that a file's
// problems read top to bottom and the order never depends on map iteration
// (gohcl walks its attributes and blocks through maps).
func sortDiagnostics(diags hcl.Diagnostics) {
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
	given = strings.ToLower(given)
	best, bestDist := "", 3
	for _, o := range options {
		if given != "" && strings.HasPrefix(o, given) {
			// A cut-short value ("on-fail") is as clear a slip as a typo.
			return fmt.Sprintf(" Did you mean %q?", o)
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
