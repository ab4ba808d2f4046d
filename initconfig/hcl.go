package initconfig

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Result is a written cluster.hcl.
type Result struct {
	// File is the cluster.hcl, formatted.
	File []byte
	// Apps is how many apps it has.
	Apps int
	// Unmapped lists what the source says that cluster.hcl cannot, one
	// line each, as the comment at the end of File has them.
	Unmapped []string
}

// writer builds a cluster.hcl as text: comments go where hclwrite's
// token API would make them hard to place, and Format aligns it after.
type writer struct {
	b        strings.Builder
	unmapped []string
}

func (w *writer) line(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

// comment writes text as # lines, at indent.
func (w *writer) comment(indent, text string) {
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			w.b.WriteString(indent + "#\n")
			continue
		}
		w.b.WriteString(indent + "# " + l + "\n")
	}
}

func (w *writer) unmap(format string, args ...any) {
	w.unmapped = append(w.unmapped, fmt.Sprintf(format, args...))
}

// result ends the file with the unmapped list and formats it.
func (w *writer) result(apps int) Result {
	if len(w.unmapped) > 0 {
		w.line("")
		w.comment("", "Not converted: no equivalent in cluster.hcl (clusterrun init printed these too).")
		for _, u := range w.unmapped {
			w.comment("", "  "+u)
		}
	}
	return Result{File: hclwrite.Format([]byte(w.b.String())), Apps: apps, Unmapped: w.unmapped}
}

// Quote writes s as an HCL string literal that reads back as s: its
// escapes, and "$${" and "%%{" so that nothing in s is read as a template.
func Quote(s string) string { return quote(s) }

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

var identifier = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// key writes a map key: bare when it is an identifier, else quoted.
func key(k string) string {
	if identifier().MatchString(k) {
		return k
	}
	return quote(k)
}

// envBlock writes an env attribute, one variable a line, in key order.
func (w *writer) envBlock(indent string, env map[string]string) {
	if len(env) == 0 {
		return
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.line("%senv = {", indent)
	for _, k := range keys {
		w.line("%s  %s = %s", indent, key(k), quote(env[k]))
	}
	w.line("%s}", indent)
}

// appName makes s a valid app name: letters, digits, "-" and "_",
// starting with a letter or digit.
func appName(s string) string {
	if hclconfig.ValidName(s) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "-_")
	if out == "" {
		return "app"
	}
	return out
}
