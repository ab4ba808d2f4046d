package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// obj is a map that keeps its keys in the order they were set, so that
// manifests read in the order their documentation lists the fields. The
// values are obj, list, string, int, int64, bool, or nil (left out).
type obj []kv

type kv struct {
	k string
	v any
}

type list []any

// set appends k unless v is nil, an empty obj or an empty list.
func (o *obj) set(k string, v any) {
	switch x := v.(type) {
	case nil:
		return
	case obj:
		if len(x) == 0 {
			return
		}
	case list:
		if len(x) == 0 {
			return
		}
	}
	*o = append(*o, kv{k, v})
}

// MarshalJSON writes the keys in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(e.k)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// badStrings lists the strings of a tree that JSON cannot hold: the
// backstop for any the renderer did not check with its position.
func badStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		if bad := jsonText(x); bad != "" {
			out = append(out, bad)
		}
	case obj:
		for _, e := range x {
			out = append(out, badStrings(e.k)...)
			out = append(out, badStrings(e.v)...)
		}
	case list:
		for _, e := range x {
			out = append(out, badStrings(e)...)
		}
	}
	return out
}

// jsonIndent writes v as indented JSON, without HTML escaping.
func jsonIndent(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		// Only obj, list and scalars go in: nothing json cannot encode.
		panic(err)
	}
	return b.Bytes()
}

// yamlDoc writes o as a YAML block mapping. bad lists the strings YAML
// cannot hold (the renderer refuses those with their position before they
// get here; this is the backstop for any it did not check).
func yamlDoc(o obj) (doc string, bad []string) {
	w := &yamlWriter{}
	w.obj(o, 0)
	return w.b.String(), w.bad
}

type yamlWriter struct {
	b   strings.Builder
	bad []string
}

func (w *yamlWriter) obj(o obj, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, e := range o {
		w.b.WriteString(pad)
		w.b.WriteString(w.scalar(e.k))
		w.b.WriteString(":")
		w.value(e.v, indent)
	}
}

// value writes what follows "key:" (or "-").
func (w *yamlWriter) value(v any, indent int) {
	switch x := v.(type) {
	case obj:
		if len(x) == 0 {
			w.b.WriteString(" {}\n")
			return
		}
		w.b.WriteString("\n")
		w.obj(x, indent+2)
	case list:
		if len(x) == 0 {
			w.b.WriteString(" []\n")
			return
		}
		w.b.WriteString("\n")
		// Sequences sit at their key's indentation, as kubectl writes them.
		w.list(x, indent)
	case string:
		if literalYAML(x) {
			// A file's text (a ConfigMap's data) as a literal block, which
			// keeps it readable and reads back byte for byte.
			w.b.WriteString(" |\n")
			pad := strings.Repeat(" ", indent+2)
			for _, line := range strings.SplitAfter(strings.TrimSuffix(x, "\n"), "\n") {
				if line != "\n" {
					w.b.WriteString(pad)
				}
				w.b.WriteString(line)
			}
			w.b.WriteString("\n")
			return
		}
		w.b.WriteString(" " + w.scalar(x) + "\n")
	default:
		w.b.WriteString(" " + w.scalar(x) + "\n")
	}
}

// literalYAML reports whether s can be a literal block scalar ("|") that
// reads back as s: lines ending in "\n" with one at the very end, no
// first line starting with a space (it would set the indentation), no
// line of only blanks (it would read as empty), and nothing a YAML
// reader does not take as text.
func literalYAML(s string) bool {
	if !strings.HasSuffix(s, "\n") || strings.HasSuffix(s, "\n\n") || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' {
		return false
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line != "" && strings.TrimLeft(line, " \t") == "" {
			return false
		}
	}
	return firstBad(s, func(c rune) bool {
		return c == '\n' || c == '\t' || !isControl(c) && c != 0x2028 && c != 0x2029 && c != 0xfeff && c != 0xfffe && c != 0xffff
	}) == ""
}

func (w *yamlWriter) list(l list, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, item := range l {
		w.b.WriteString(pad + "-")
		switch x := item.(type) {
		case obj:
			if len(x) == 0 {
				w.b.WriteString(" {}\n")
				continue
			}
			// The first key goes on the dash's line.
			w.b.WriteString(" ")
			first := true
			for _, e := range x {
				if !first {
					w.b.WriteString(pad + "  ")
				}
				first = false
				w.b.WriteString(w.scalar(e.k) + ":")
				w.value(e.v, indent+2)
			}
		case list:
			w.b.WriteString("\n")
			w.list(x, indent+2)
		default:
			w.b.WriteString(" " + w.scalar(x) + "\n")
		}
	}
}

// scalar writes a scalar; a string through yamlString.
func (w *yamlWriter) scalar(v any) string {
	if s, ok := v.(string); ok {
		out, bad := yamlString(s)
		if bad != "" {
			w.bad = append(w.bad, bad)
			return `""`
		}
		return out
	}
	return yamlScalar(v)
}

// yamlScalar writes a scalar that is not a string.
func yamlScalar(v any) string {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	panic(fmt.Sprintf("export: no YAML for %T", v))
}

// yamlWords are the plain scalars YAML 1.1 (which Kubernetes' decoder
// follows for booleans) reads as something other than a string.
var yamlWords = map[string]bool{
	"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "null": true, "~": true,
}

func plainYAML(s string) bool {
	if s == "" || yamlWords[strings.ToLower(s)] {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '_') {
		// Digits, signs and dots could read as numbers; punctuation as
		// YAML syntax.
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '/':
		default:
			return false
		}
	}
	return true
}
