package export

import (
	"bytes"
	"encoding/json"
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

// yamlDoc writes o as a YAML block mapping.
func yamlDoc(o obj) string {
	var b strings.Builder
	writeYAMLObj(&b, o, 0)
	return b.String()
}

func writeYAMLObj(b *strings.Builder, o obj, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, e := range o {
		b.WriteString(pad)
		b.WriteString(yamlScalar(e.k))
		b.WriteString(":")
		writeYAMLValue(b, e.v, indent)
	}
}

// writeYAMLValue writes what follows "key:" (or "-").
func writeYAMLValue(b *strings.Builder, v any, indent int) {
	switch x := v.(type) {
	case obj:
		if len(x) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteString("\n")
		writeYAMLObj(b, x, indent+2)
	case list:
		if len(x) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		// Sequences sit at their key's indentation, as kubectl writes them.
		writeYAMLList(b, x, indent)
	default:
		b.WriteString(" " + yamlScalar(x) + "\n")
	}
}

func writeYAMLList(b *strings.Builder, l list, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, item := range l {
		b.WriteString(pad + "-")
		switch x := item.(type) {
		case obj:
			if len(x) == 0 {
				b.WriteString(" {}\n")
				continue
			}
			// The first key goes on the dash's line.
			b.WriteString(" ")
			first := true
			for _, e := range x {
				if !first {
					b.WriteString(pad + "  ")
				}
				first = false
				b.WriteString(yamlScalar(e.k) + ":")
				writeYAMLValue(b, e.v, indent+2)
			}
		case list:
			b.WriteString("\n")
			writeYAMLList(b, x, indent+2)
		default:
			b.WriteString(" " + yamlScalar(x) + "\n")
		}
	}
}

// yamlScalar writes a scalar: a string plain when YAML reads it back as
// the same string, else double-quoted (JSON's escapes are YAML's).
func yamlScalar(v any) string {
	switch x := v.(type) {
	case string:
		if plainYAML(x) {
			return x
		}
		q, _ := marshal(x)
		return string(q)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	panic("export: no YAML for this value")
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
