package export

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Every value of the config that goes into a rendered file goes through
// exactly one of the functions below, one per context of the target's
// syntax. Each returns the text to write, which the target reads back as
// the value, or why the value cannot be written there (bad != ""); a value
// is never dropped or rewritten to fit. The renderer turns a refusal into
// an error at the attribute's position. The round trip through each
// target's own reader is in the tests (systemd_test.go, procfile_test.go,
// export/verify) and fuzzed.

// describe names a character for a message: "a newline (U+000A)".
func describe(c rune) string {
	names := map[rune]string{
		'\n': "a newline", '\r': "a carriage return", '\t': "a tab", 0: "a NUL byte",
		'\v': "a vertical tab", '\f': "a form feed", 0x85: "a next-line character",
		0x2028: "a line separator", 0x2029: "a paragraph separator", ' ': "a space",
	}
	if n, ok := names[c]; ok {
		return fmt.Sprintf("%s (U+%04X)", n, c)
	}
	if c == utf8.RuneError {
		return "bytes that are not UTF-8"
	}
	return fmt.Sprintf("the control character U+%04X", c)
}

// firstBad returns a description of the first rune of s that ok refuses,
// or of invalid UTF-8, or "".
func firstBad(s string, ok func(rune) bool) string {
	for i, c := range s {
		if c == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return describe(c)
			}
		}
		if !ok(c) {
			return describe(c)
		}
	}
	return ""
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 }

// isASCIIControl is what systemd counts as a control character: it reads
// bytes, and the UTF-8 of U+0080 and above has none below 0x80.
func isASCIIControl(c rune) bool { return c < 0x20 || c == 0x7f }

// noNUL accepts every character but NUL: what an argv word or an
// environment value can hold.
func noNUL(c rune) bool { return c != 0 }

// --- systemd ---------------------------------------------------------------
//
// A unit file is read line by line: leading and trailing whitespace of a
// value is stripped, a line ending in a backslash continues on the next
// one, and every value of the settings used here has its specifiers (%n,
// %i, ...) expanded, so a literal "%" is written "%%". On top of that, each
// setting has its own syntax (systemd.service(5), systemd.exec(5)):
//
//   - ExecStart= splits words, removes "..." and '...' quoting, reads C
//     escapes (\n, \x01, \\, \"), and at start expands $NAME and ${NAME}
//     ("$$" is "$"): sdExecWord.
//   - Environment= splits words and removes quoting and C escapes, but
//     expands no variables: sdEnvAssignment.
//   - Paths (WorkingDirectory=, EnvironmentFile=, ListenStream=) and plain
//     strings (Description=, User=, Group=) are taken as they are, with
//     no quoting and no escapes: sdPath, sdString, sdAccount.

// sdQuote double-quotes a word with C escapes, as ExecStart= and
// Environment= read them. s has its specifiers (and, for ExecStart=, $)
// already protected.
func sdQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '\\' || c == ';' || c >= 0x80
	}) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteRune(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// sdProtect doubles "%" (specifiers) and, for a command line, "$"
// (variables).
func sdProtect(s string, dollar bool) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if dollar {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	return s
}

// sdExecWord writes one word of an ExecStart= line. The program word may
// not start with one of the prefix characters systemd reads there
// ("-", "@", ":", "+", "!"), quoted or not.
func sdExecWord(s string, program bool) (string, string) {
	if bad := firstBad(s, noNUL); bad != "" {
		return "", "a command-line word cannot hold " + bad
	}
	if program {
		if s == "" {
			return "", "the program is empty"
		}
		if strings.ContainsRune("-@:+!|", rune(s[0])) {
			return "", fmt.Sprintf("systemd reads a leading %q of ExecStart= as a prefix, not as part of the program's name", s[0])
		}
	}
	return sdQuote(sdProtect(s, true)), ""
}

// sdExecRefWord writes NAME=text${X}text as one ExecStart= word, for
// /usr/bin/env: the text parts protected, the references left for systemd
// to expand.
func sdExecRefWord(name string, parts []part) (string, string) {
	var b strings.Builder
	b.WriteString(name + "=")
	for _, p := range parts {
		if p.ref != "" {
			b.WriteString("${" + p.ref + "}")
			continue
		}
		if bad := firstBad(p.text, noNUL); bad != "" {
			return "", "a command-line word cannot hold " + bad
		}
		b.WriteString(sdProtect(p.text, true))
	}
	return sdQuote(b.String()), ""
}

// sdEnvName accepts the names systemd takes in Environment= (and a shell
// can expand): letters, digits and "_", not starting with a digit.
// Like every regexp of this package, it is compiled at first use: every
// process of the binary runs package init, and few of them export.
var sdEnvName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// sdEnvAssignment writes NAME=VALUE as one word of an Environment= line.
// systemd has accepted and refused different control characters in values
// over the versions; only tab and newline are accepted by every one.
func sdEnvAssignment(name, value string) (string, string) {
	if !sdEnvName().MatchString(name) {
		return "", fmt.Sprintf("systemd takes only environment variable names of letters, digits and \"_\", not starting with a digit: %q", name)
	}
	if bad := firstBad(value, func(c rune) bool { return c == '\t' || c == '\n' || !isASCIIControl(c) }); bad != "" {
		return "", "an Environment= value cannot hold " + bad
	}
	return sdQuote(sdProtect(name+"="+value, false)), ""
}

// sdLiteral checks a value that a unit file takes as it is, up to the end
// of the line: no line breaks or other control characters, no whitespace
// at either end (it is stripped), no backslash at the end (it continues
// the line).
func sdLiteral(s string) string {
	if bad := firstBad(s, func(c rune) bool { return !isASCIIControl(c) }); bad != "" {
		return "a systemd setting cannot hold " + bad
	}
	if s != strings.TrimSpace(s) {
		return "systemd strips whitespace at either end of a setting"
	}
	if strings.HasSuffix(s, `\`) {
		return "a backslash at the end of a systemd setting continues it on the next line"
	}
	return ""
}

// sdPath writes an absolute path for WorkingDirectory=,
// EnvironmentFile= or ListenStream=.
func sdPath(p string) (string, string) {
	if bad := sdLiteral(p); bad != "" {
		return "", bad
	}
	if !strings.HasPrefix(p, "/") {
		return "", "systemd takes an absolute path here"
	}
	if len(p) >= 4096 {
		return "", "systemd takes paths shorter than 4096 bytes"
	}
	return sdProtect(p, false), ""
}

// sdString writes free text, such as Description=.
func sdString(s string) (string, string) {
	if bad := sdLiteral(s); bad != "" {
		return "", bad
	}
	return sdProtect(s, false), ""
}

// sdAccount writes a user or group name (or a numeric id) for User= or
// Group=, which systemd checks: no ":" or "/", and none of the characters
// sdLiteral refuses.
func sdAccount(s string) (string, string) {
	if bad := sdLiteral(s); bad != "" {
		return "", bad
	}
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, ":/") || strings.HasPrefix(s, "-") {
		return "", fmt.Sprintf("systemd refuses %q as a user or group name (it may not be empty, \".\" or \"..\", start with \"-\", or hold \":\" or \"/\")", s)
	}
	return sdProtect(s, false), ""
}

// comment makes text safe for a # comment line of any format: Go's
// quoting when it holds anything a line cannot (comments carry no
// meaning, so the quotes lose none).
func comment(s string) string {
	if firstBad(s, func(c rune) bool { return !isControl(c) && c != 0x2028 && c != 0x2029 && c != 0xfeff }) == "" {
		return s
	}
	return strconv.Quote(s)
}

// --- Procfile and sh ---------------------------------------------------------

// procfileLineBreak reports characters that end a Procfile line for one
// reader or another: foreman splits on "\n", honcho (Python's splitlines)
// also on "\r", "\v", "\f", "\x1c"-"\x1e", U+0085, U+2028 and U+2029.
func procfileLineBreak(c rune) bool {
	switch c {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029, 0:
		return true
	}
	return false
}

// procfileText checks text for a Procfile line: anything but the
// characters that end a line.
func procfileText(s string) string {
	if bad := firstBad(s, func(c rune) bool { return !procfileLineBreak(c) }); bad != "" {
		return "a Procfile line cannot hold " + bad
	}
	return ""
}

// procfileCommand checks a command written as a string for a Procfile
// line, which /bin/sh runs.
func procfileCommand(s string) string {
	if bad := procfileText(s); bad != "" {
		return bad
	}
	if strings.TrimSpace(s) == "" {
		return "a Procfile line needs a command"
	}
	return ""
}

// shellQuote quotes s as one word for sh when it needs it: '...', with
// ' written as '\”. Single quotes keep every byte but NUL.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%_+=:,./-", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// --- YAML --------------------------------------------------------------------

// yamlString writes a string scalar: plain when YAML reads it back as the
// same string (yamlScalar decides), else double-quoted with YAML's escapes
// for everything that is not printable or is a line break in YAML's sense
// (U+0085, U+2028 and U+2029 are line breaks there, and a raw line break
// in a quoted scalar folds into a space). YAML has no bytes: text that is
// not UTF-8 cannot be written.
func yamlString(s string) (string, string) {
	if bad := firstBad(s, func(rune) bool { return true }); bad != "" {
		return "", "YAML cannot hold " + bad
	}
	if plainYAML(s) {
		return s, ""
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == 0x85:
			b.WriteString(`\N`)
		case c == 0x2028:
			b.WriteString(`\L`)
		case c == 0x2029:
			b.WriteString(`\P`)
		case c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0:
			fmt.Fprintf(&b, `\x%02X`, c)
		case c == 0xfeff || c >= 0xd800 && c < 0xe000 || c == 0xfffe || c == 0xffff:
			fmt.Fprintf(&b, `\u%04X`, c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String(), ""
}

// --- JSON --------------------------------------------------------------------

// jsonText checks a string for JSON, whose encoder would write bytes that
// are not UTF-8 as U+FFFD without a word.
func jsonText(s string) string {
	if bad := firstBad(s, func(rune) bool { return true }); bad != "" {
		return "JSON cannot hold " + bad
	}
	return ""
}

// execText checks text that ends up in a process's argv, environment or
// working directory through JSON or YAML: no NUL, which execve cannot
// carry, and nothing JSON cannot hold.
func execText(s string) string {
	if bad := jsonText(s); bad != "" {
		return bad
	}
	if strings.ContainsRune(s, 0) {
		return "a command line, an environment variable or a path cannot hold a NUL byte"
	}
	return ""
}

// nomadVar is what Nomad replaces in a task's config and env with its own
// variables (NOMAD_*, node attributes, the task's env), with no escape.
var nomadVar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{[a-zA-Z0-9_\-.\[\]"]+\}`) })

// nomadText checks text for a Nomad task's args or env: JSON, and no
// "${...}" that Nomad would replace.
func nomadText(s string) string {
	if bad := execText(s); bad != "" {
		return bad
	}
	if m := nomadVar().FindString(s); m != "" {
		return fmt.Sprintf("Nomad replaces %s with its own variable of that name before the task starts, and has no escape for it; in a shell command write $%s instead", m, strings.Trim(m, "${}"))
	}
	return ""
}

// --- Kubernetes ----------------------------------------------------------------

// k8sEnvName is what the API accepts as an environment variable name.
var k8sEnvName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`) })

// k8sEscape protects text from Kubernetes' expansion of $(VAR) in env
// values, command and args: "$$" reads as "$", and "$(" would start a
// reference.
func k8sEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '$' && i+1 < len(s) && (s[i+1] == '$' || s[i+1] == '(') {
			b.WriteByte('$')
		}
	}
	return b.String()
}
