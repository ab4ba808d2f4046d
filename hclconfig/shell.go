package hclconfig

import (
	"strconv"
	"strings"
	"sync"
)

// A command written as a string runs as /bin/sh -c STRING. When the string
// is one simple command, "exec " goes in front of the program, as foreman
// does, so that the shell replaces itself with the program: the instance's
// pid, signals and exit status are then the program's own, and a stop
// signal reaches it without a shell in between that may not pass it on.
//
// The scan below is deliberately conservative. Anything it is not sure of
// (a pipe, a list, a redirection, a subshell, a command substitution, a
// shell keyword or builtin, a program name that only an expansion supplies)
// makes it answer "not simple", and the string then runs exactly as
// written, which is always correct, only with a shell in between.

// shellWord is one word of a simple command.
type shellWord struct {
	start, end int    // byte offsets in the string
	value      string // the word after quote removal; valid when !expands
	// expands: the word has a parameter expansion ($X, ${X}), so its value
	// is known only when the shell runs it.
	expands bool
	// glob: the word has an unquoted *, ? or [, or starts with ~.
	glob bool
	// brace: the word has an unquoted { or } that is not part of ${...}.
	brace bool
}

// shellOnly are the words that, as a command's first word, are not a
// program exec could run: reserved words, special builtins, and the
// builtins that change the shell itself or behave differently from their
// /bin twins (echo, pwd).
// Built at first use, as every table of this package: every process of
// the binary runs package init, and few of them read a command.
var shellOnly = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		if then else elif fi for while until do done case esac in { } ! [[ ]] function select time coproc
		: . break continue eval exec exit export readonly return set shift times trap unset source
		alias unalias cd command getopts hash jobs fg bg read type ulimit umask wait local declare
		typeset let builtin echo printf pwd test [ true false kill`) {
		m[w] = true
	}
	return m
})

// execForm returns the string /bin/sh -c should run for the command string
// s: s with "exec " in front of its program when s is one simple command
// (after any leading NAME=value assignments, which stay in front), else s
// unchanged. simple reports which.
func execForm(s string) (form string, simple bool) {
	_, program, _, ok := simpleCommand(s)
	if !ok {
		return s, false
	}
	return s[:program.start] + "exec " + s[program.start:], true
}

// simpleCommand splits s into its leading assignments, the word that
// names the program and the words after it, when s is one simple command
// that exec can run.
func simpleCommand(s string) (assigns []shellWord, program shellWord, args []shellWord, ok bool) {
	words, ok := shellWords(s)
	if !ok {
		return nil, shellWord{}, nil, false
	}
	i := 0
	for i < len(words) && isAssignment(s[words[i].start:words[i].end]) {
		i++
	}
	if i == len(words) {
		return nil, shellWord{}, nil, false // only assignments: no program
	}
	w := words[i]
	raw := s[w.start:w.end]
	switch {
	case strings.HasPrefix(raw, "-"):
		return nil, shellWord{}, nil, false // exec would take it for an option
	case w.brace:
		return nil, shellWord{}, nil, false // a group, or brace expansion
	case w.glob:
		return nil, shellWord{}, nil, false
	case w.expands:
		// "$JAVA_HOME/bin/java" is a path whatever it expands to, but a
		// bare "$CMD" could turn out to be a builtin or an option.
		if !strings.Contains(raw, "/") {
			return nil, shellWord{}, nil, false
		}
	case shellOnly()[w.value], w.value == "" && !w.expands:
		return nil, shellWord{}, nil, false
	}
	return words[:i], w, words[i+1:], true
}

// programOf splits the command string s, when it is one simple command,
// into the variables it sets for its program and the word that names the
// program: the leading NAME=value words, and those of env when the
// program is env ("env RAILS_ENV=production bin/rails", as Procfiles
// write). ok is false when s is no simple command, or env takes options
// (-i, -u and -S change what runs).
func programOf(s string) (vars []shellWord, program shellWord, ok bool) {
	assigns, w, args, ok := simpleCommand(s)
	if !ok {
		return nil, shellWord{}, false
	}
	if w.expands || w.value != "env" && !strings.HasSuffix(w.value, "/env") {
		return assigns, w, true
	}
	vars = assigns
	for _, a := range args {
		raw := s[a.start:a.end]
		switch {
		case isAssignment(raw):
			vars = append(vars, a)
		case strings.HasPrefix(raw, "-"), a.brace, a.glob, a.expands && !strings.Contains(raw, "/"), a.value == "":
			return nil, shellWord{}, false
		default:
			return vars, a, true
		}
	}
	return nil, shellWord{}, false // env alone prints the environment
}

// isAssignment reports whether a word, as written, is NAME=value.
func isAssignment(raw string) bool {
	name, _, ok := strings.Cut(raw, "=")
	if !ok || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// shellWords splits s into words the way sh does for a simple command, and
// fails on anything that would make it more than one: an unquoted ; & | ( )
// < > or newline, a backtick or $( anywhere outside single quotes, a
// backslash-newline, or unbalanced quotes.
func shellWords(s string) ([]shellWord, bool) {
	var words []shellWord
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return words, true
		}
		if s[i] == '#' {
			// A comment runs to the end of the line; a newline after it
			// would start another command.
			return words, !strings.ContainsRune(s[i:], '\n')
		}
		w := shellWord{start: i}
		var val strings.Builder
		if s[i] == '~' {
			w.glob = true
		}
	word:
		for i < len(s) {
			c := s[i]
			switch c {
			case ' ', '\t':
				break word
			case '\n', ';', '&', '|', '(', ')', '<', '>', '`':
				return nil, false
			case '*', '?', '[':
				w.glob = true
				val.WriteByte(c)
				i++
			case '{', '}':
				w.brace = true
				val.WriteByte(c)
				i++
			case '\\':
				if i+1 >= len(s) || s[i+1] == '\n' {
					return nil, false
				}
				val.WriteByte(s[i+1])
				i += 2
			case '\'':
				end := strings.IndexByte(s[i+1:], '\'')
				if end < 0 {
					return nil, false
				}
				val.WriteString(s[i+1 : i+1+end])
				i += end + 2
			case '"':
				n, ok := doubleQuoted(s[i:], &val, &w)
				if !ok {
					return nil, false
				}
				i += n
			case '$':
				n, ok := expansion(s[i:])
				if !ok {
					return nil, false
				}
				if n > 1 {
					w.expands = true
				}
				val.WriteString(s[i : i+n])
				i += n
			default:
				val.WriteByte(c)
				i++
			}
		}
		w.end = i
		w.value = val.String()
		words = append(words, w)
	}
}

// doubleQuoted reads the double-quoted string at the start of s, adding its
// value to val, and returns how many bytes it took.
func doubleQuoted(s string, val *strings.Builder, w *shellWord) (int, bool) {
	i := 1
	for i < len(s) {
		switch c := s[i]; c {
		case '"':
			return i + 1, true
		case '`':
			return 0, false
		case '\\':
			if i+1 >= len(s) || s[i+1] == '\n' {
				return 0, false
			}
			if strings.IndexByte("$`\"\\", s[i+1]) < 0 {
				val.WriteByte('\\') // inside "", other backslashes stay
			}
			val.WriteByte(s[i+1])
			i += 2
		case '$':
			n, ok := expansion(s[i:])
			if !ok {
				return 0, false
			}
			if n > 1 {
				w.expands = true
			}
			val.WriteString(s[i : i+n])
			i += n
		default:
			val.WriteByte(c)
			i++
		}
	}
	return 0, false
}

// expansion measures the "$..." at the start of s: $NAME, $1, $@ and the
// like, or ${...} without quotes or nested expansions inside. A lone "$"
// is a literal dollar (n == 1). $( and anything unclear fail.
func expansion(s string) (n int, ok bool) {
	if len(s) < 2 {
		return 1, true
	}
	switch c := s[1]; {
	case c == '(', c == '[', c == '\'', c == '"':
		// $(cmd), $[arith], and bash's $'...' and $"..." quoting.
		return 0, false
	case c == '{':
		end := strings.IndexByte(s, '}')
		if end < 0 || strings.ContainsAny(s[2:end], "'\"\\`$") {
			return 0, false
		}
		return end + 1, true
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		n = 2
		for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= '0' && s[n] <= '9') {
			n++
		}
		return n, true
	case c >= '0' && c <= '9', strings.IndexByte("@*#?$!-", c) >= 0:
		return 2, true
	default:
		return 1, true
	}
}

// Program is the program the app's command runs, for a check that it is
// there: the first element of a list, or the program of a command string
// that is one simple command. It is "" when only the shell that runs the
// string knows it: a pipe or a list, a program named by an expansion, a
// PATH set on the line. viaShell is true for a string command.
func (a *App) Program() (prog string, viaShell bool) {
	if len(a.Command) == 0 {
		return "", false
	}
	s := a.Written.CommandString
	if s == "" {
		return a.Command[0], false
	}
	vars, w, ok := programOf(s)
	if !ok || w.expands || w.glob {
		return "", true
	}
	for _, v := range vars {
		if strings.HasPrefix(s[v.start:v.end], "PATH=") {
			return "", true // it is looked up on a PATH set right there
		}
	}
	return w.value, true
}

// setsPort returns the PORT the command string s sets for its program
// itself ("PORT=3000 bundle exec puma", "env PORT=3000 rails s"), or 0
// when it sets none, or none that is a port number written out.
func setsPort(s string) (port int, at [2]int) {
	vars, _, ok := programOf(s)
	if !ok {
		return 0, at
	}
	for _, v := range vars {
		val, isPort := strings.CutPrefix(v.value, "PORT=")
		if n, err := strconv.Atoi(val); isPort && !v.expands && err == nil && n > 0 && n <= 65535 {
			port, at = n, [2]int{v.start, v.end}
		}
	}
	return port, at
}
