package export

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads a unit file back as systemd does, for the round-trip
// tests and the fuzz targets: systemd.syntax(5) for the file (sections,
// comments, whitespace, continuation lines), systemd.unit(5) for
// specifiers, and for the values the rules of the settings export writes:
// ExecStart= and Environment= split into words with quoting and C escapes,
// every other setting taken as it is. TestSystemdReadsUnitsAsWeDo checks
// this reader against systemd's own parse of the same files.

// unitFile is a parsed unit: section -> settings in order.
type unitFile map[string][]setting

type setting struct {
	key, value string // value: continuation lines joined, specifiers not expanded
	line       int
}

// parseUnit reads a unit file's syntax.
func parseUnit(text string) (unitFile, error) {
	u := unitFile{}
	section := ""
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		l := strings.Trim(lines[i], " \t\r")
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		// A line ending in a backslash continues: the backslash becomes a
		// space, and comment lines in between are skipped.
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			l = l[:len(l)-1] + " "
			i++
			next := strings.Trim(lines[i], " \t\r")
			if next != "" && (next[0] == '#' || next[0] == ';') {
				continue
			}
			l += next
		}
		if l[0] == '[' {
			if !strings.HasSuffix(l, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, l)
			}
			section = l[1 : len(l)-1]
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: setting outside a section", n)
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: no '=' in %q", n, l)
		}
		if !utf8.ValidString(l) {
			return nil, fmt.Errorf("line %d: not UTF-8", n)
		}
		u[section] = append(u[section], setting{key: strings.TrimRight(k, " \t"), value: strings.TrimLeft(v, " \t"), line: n})
	}
	return u, nil
}

// values returns every value of key in section, in order.
func (u unitFile) values(section, key string) []string {
	var out []string
	for _, s := range u[section] {
		if s.key == key {
			out = append(out, s.value)
		}
	}
	return out
}

// keys lists the keys of a section, in order.
func (u unitFile) keys(section string) []string {
	var out []string
	for _, s := range u[section] {
		out = append(out, s.key)
	}
	return out
}

// specifiers expands %% and %i (the instance) and refuses any other
// specifier: export writes no other.
func specifiers(s, instance string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%q ends in a lone %%", s)
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'i':
			b.WriteString(instance)
		default:
			return "", fmt.Errorf("%q has the specifier %%%c", s, s[i])
		}
	}
	return b.String(), nil
}

// splitWords splits a value into words as systemd's extract_first_word
// does with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE: whitespace separates, '...'
// and "..." quote (and may be glued to other text), C escapes are read
// inside and outside quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			return words, nil
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			if quote == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
				break
			}
			switch {
			case c == '\\':
				n, err := cunescape(s[i+1:], &b)
				if err != nil {
					return nil, err
				}
				i += n
			case quote != 0 && c == quote:
				quote = 0
			case quote == 0 && (c == '\'' || c == '"'):
				quote = c
			default:
				b.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("unterminated quote in %q", s)
		}
		words = append(words, b.String())
	}
}

// cunescape reads one C escape after a backslash into b and returns how
// many bytes it took.
func cunescape(s string, b *strings.Builder) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("a backslash at the end")
	}
	simple := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v', '\\': '\\', '"': '"', '\'': '\'', 's': ' '}
	if c, ok := simple[s[0]]; ok {
		b.WriteByte(c)
		return 1, nil
	}
	hex := func(n int) (int, error) {
		if len(s) < 1+n {
			return 0, fmt.Errorf("short escape \\%s", s)
		}
		v, err := strconv.ParseUint(s[1:1+n], 16, 32)
		if err != nil {
			return 0, fmt.Errorf("bad escape \\%s", s[:1+n])
		}
		return int(v), nil
	}
	switch s[0] {
	case 'x':
		v, err := hex(2)
		if err != nil {
			return 0, err
		}
		if v == 0 {
			return 0, fmt.Errorf("\\x00")
		}
		b.WriteByte(byte(v))
		return 3, nil
	case 'u', 'U':
		n := 4
		if s[0] == 'U' {
			n = 8
		}
		v, err := hex(n)
		if err != nil {
			return 0, err
		}
		if v == 0 || !utf8.ValidRune(rune(v)) {
			return 0, fmt.Errorf("bad code point in \\%s", s[:1+n])
		}
		b.WriteRune(rune(v))
		return 1 + n, nil
	}
	if s[0] >= '0' && s[0] <= '7' {
		if len(s) < 3 {
			return 0, fmt.Errorf("short octal escape")
		}
		v, err := strconv.ParseUint(s[:3], 8, 16)
		if err != nil || v == 0 || v > 255 {
			return 0, fmt.Errorf("bad octal escape \\%s", s[:3])
		}
		b.WriteByte(byte(v))
		return 3, nil
	}
	return 0, fmt.Errorf("unknown escape \\%c", s[0])
}

// execArgv reads an ExecStart= value as systemd runs it: specifiers, words,
// then $NAME and ${NAME} from env ("$$" is "$"). A reference to a name
// env lacks is kept as ${NAME}, so that a test can see it.
func execArgv(value, instance string, env map[string]string) ([]string, error) {
	v, err := specifiers(value, instance)
	if err != nil {
		return nil, err
	}
	words, err := splitWords(v)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty command line")
	}
	if strings.ContainsAny(words[0][:1], "-@:+!|") {
		return nil, fmt.Errorf("the program %q starts with a prefix", words[0])
	}
	for i, w := range words {
		var b strings.Builder
		for j := 0; j < len(w); j++ {
			if w[j] != '$' {
				b.WriteByte(w[j])
				continue
			}
			switch {
			case j+1 < len(w) && w[j+1] == '$':
				b.WriteByte('$')
				j++
			case j+1 < len(w) && w[j+1] == '{':
				end := strings.IndexByte(w[j:], '}')
				if end < 0 {
					b.WriteByte('$')
					continue
				}
				name := w[j+2 : j+end]
				if val, ok := env[name]; ok {
					b.WriteString(val)
				} else {
					b.WriteString("${" + name + "}")
				}
				j += end
			default:
				// $NAME unbraced: systemd splits its value into words;
				// export never writes one.
				return nil, fmt.Errorf("word %q has an unbraced $", w)
			}
		}
		words[i] = b.String()
	}
	return words, nil
}

// environment reads the Environment= settings of a unit into a map, as
// systemd does (a later assignment wins).
func environment(values []string, instance string) (map[string]string, error) {
	env := map[string]string{}
	for _, value := range values {
		v, err := specifiers(value, instance)
		if err != nil {
			return nil, err
		}
		words, err := splitWords(v)
		if err != nil {
			return nil, err
		}
		for _, w := range words {
			k, val, ok := strings.Cut(w, "=")
			if !ok || !sdEnvName().MatchString(k) {
				return nil, fmt.Errorf("invalid assignment %q", w)
			}
			env[k] = val
		}
	}
	return env, nil
}
