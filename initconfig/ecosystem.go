package initconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Limits of reading an ecosystem file. A pm2 file is a few KiB; the
// cluster.hcl written from it must stay under the 1 MiB that clusterrun
// reads, so a larger one is refused before it is parsed.
const (
	// maxEcosystem bounds a .json file and what a .js file's loader
	// writes.
	maxEcosystem = 1 << 20
	// maxNodeOutput bounds what is kept of node's stdout and stderr (a
	// file that prints as it loads): the rest is read and dropped.
	maxNodeOutput = 64 << 10
	// nodeHeapMB bounds node's heap while it loads the file.
	nodeHeapMB = 256
)

// nodeTimeout bounds how long a .js file may take to load: it is a
// program, and may wait on something, or keep running. (A variable for the
// tests.)
var nodeTimeout = 20 * time.Second

// readJS is the node program that writes an ecosystem.config.js as JSON
// on fd 3, so that whatever the file itself prints on stdout cannot mix
// with it: module.exports (or an ES module's default export), functions
// left out.
const readJS = `const file = process.argv[1];
const fs = require("fs");
const show = (m) => { const v = m && m.__esModule && m.default !== undefined ? m.default : m; fs.writeSync(3, JSON.stringify(v === undefined ? null : v)); fs.closeSync(3); process.exit(0); };
const fail = (e) => { console.error(String((e && e.stack) || e)); process.exit(1); };
try { show(require(file)); } catch (e) {
  if (e && e.code === "ERR_REQUIRE_ESM") { import(require("url").pathToFileURL(file).href).then((m) => show(m.default !== undefined ? m.default : m), fail); }
  else { fail(e); }
}`

// Ecosystem is a pm2 ecosystem file as pm2 reads it.
type Ecosystem struct {
	// Apps are the app objects: of "apps", else of "pm2", else the file
	// itself; an object where pm2 takes a list is a list of one.
	Apps []map[string]any
	// Other are the file's other top-level keys, sorted: "deploy",
	// "static", ..., which cluster.hcl has no equivalent for.
	Other map[string]any
}

// ReadEcosystem reads a pm2 ecosystem file as pm2 does: a .js, .cjs or
// .mjs file is loaded by node (on PATH), bounded in time, memory and
// output; a .json file is read as the JavaScript object literal pm2
// evaluates it as (comments, unquoted keys, single quotes and trailing
// commas are allowed), without running anything.
func ReadEcosystem(file string) (*Ecosystem, error) {
	var v any
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".js", ".cjs", ".mjs":
		data, err := loadJS(file)
		if err != nil {
			return nil, err
		}
		if v, err = decodeJSON(data); err != nil {
			return nil, fmt.Errorf("cannot read %s: what node wrote for it is not JSON: %v", file, err)
		}
	case ".json":
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", file, unwrap(err))
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxEcosystem+1))
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", file, unwrap(err))
		}
		if len(data) > maxEcosystem {
			return nil, fmt.Errorf("cannot read %s: it is over %d KiB, and an ecosystem file is a few; is it the right file?", file, maxEcosystem>>10)
		}
		if v, err = parseJSObject(data); err != nil {
			return nil, fmt.Errorf("cannot read %s: %v", file, err)
		}
	default:
		return nil, fmt.Errorf("cannot read %s: a pm2 ecosystem file ends in .js, .cjs, .mjs or .json", file)
	}
	return ecosystemOf(file, v)
}

// decodeJSON decodes JSON with numbers kept as written.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one value")
	}
	return v, nil
}

// ecosystemOf finds the apps as pm2 does (lib/API.js): config.apps, else
// config.pm2, else the config itself, an object taken as a list of one.
func ecosystemOf(file string, v any) (*Ecosystem, error) {
	eco := &Ecosystem{Other: map[string]any{}}
	apps := v
	if m, ok := v.(map[string]any); ok {
		switch {
		case m["apps"] != nil:
			apps = m["apps"]
			delete(m, "apps")
		case m["pm2"] != nil:
			apps = m["pm2"]
			delete(m, "pm2")
		default:
			m = nil
		}
		for k, x := range m {
			eco.Other[k] = x
		}
	}
	if m, ok := apps.(map[string]any); ok {
		apps = []any{m}
	}
	list, ok := apps.([]any)
	if !ok {
		return nil, fmt.Errorf("cannot read %s: it has no apps: expected {\"apps\": [...]}, {\"pm2\": [...]}, an array of apps, or one app with a script", file)
	}
	for i, a := range list {
		m, ok := a.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("cannot read %s: app %d is not an object", file, i+1)
		}
		eco.Apps = append(eco.Apps, m)
	}
	if len(eco.Apps) == 0 {
		return nil, fmt.Errorf("cannot read %s: its apps list is empty", file)
	}
	return eco, nil
}

// capped keeps the first max bytes written to it and drops the rest, so
// that a child that prints without end neither blocks nor fills memory.
type capped struct {
	b   bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := min(c.max-c.b.Len(), len(p)); room > 0 {
		c.b.Write(p[:room])
	}
	return len(p), nil
}

// loadJS has node load a .js ecosystem file and returns the JSON it wrote
// on fd 3. node runs in a process group of its own, killed whole at the
// time bound, so that neither it nor anything it started can keep init
// waiting.
func loadJS(file string) ([]byte, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: it is JavaScript, and node is not on PATH to load it; install node, or write it as JSON (node -e 'console.log(JSON.stringify(require(\"./%s\")))' > ecosystem.json) and use --from ecosystem.json", file, filepath.Base(file))
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", file, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", file, unwrap(err))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", file, err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, fmt.Sprintf("--max-old-space-size=%d", nodeHeapMB), "-e", readJS, abs)
	cmd.Dir = filepath.Dir(abs)
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: node, and whatever the file started.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// Once node has exited (or been killed), do not wait for the output
	// pipes of children that outlive it.
	cmd.WaitDelay = time.Second
	var stdout, stderr capped
	stdout.max, stderr.max = maxNodeOutput, maxNodeOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot read %s: cannot start node: %w", file, err)
	}
	w.Close()
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1) // buffered: the reader never blocks on a send
	go func() {
		data, err := io.ReadAll(io.LimitReader(r, maxEcosystem+1))
		// Past the bound, keep reading (and dropping) so that node's
		// write does not block; the size is refused below.
		_, _ = io.Copy(io.Discard, r)
		got <- result{data, err}
	}()
	waitErr := cmd.Wait()
	// Whatever still holds fd 3 is in node's group, which is gone, or
	// the reader has what node wrote: close it to end the read either way.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var res result
	select {
	case res = <-got:
	case <-time.After(time.Second):
		r.Close()
		res = <-got
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("cannot read %s: node did not finish loading it within %s (it waits on something, or keeps running), and was stopped", file, nodeTimeout)
	case waitErr != nil && len(res.data) == 0:
		msg := firstLines(stderr.b.String(), 4)
		if msg == "" {
			msg = waitErr.Error()
		}
		return nil, fmt.Errorf("cannot read %s: node could not load it: %s", file, msg)
	case len(res.data) > maxEcosystem:
		return nil, fmt.Errorf("cannot read %s: loading it gave a config over %d KiB, and an ecosystem file is a few", file, maxEcosystem>>10)
	case len(res.data) == 0:
		return nil, fmt.Errorf("cannot read %s: node loaded it, but it exported nothing (did it call process.exit?)", file)
	}
	return res.data, nil
}

// parseJSObject reads a JavaScript object literal as pm2 evaluates a
// .json file ("(" + text + ")"): JSON, and what JavaScript adds for data:
// // and /* */ comments, identifier keys, '...' strings, trailing commas,
// hexadecimal and signed numbers, undefined (as null). Anything that
// computes (a call, an operator, a template string) is refused with its
// line and column: such a file is a program, which init loads only as
// .js.
func parseJSObject(data []byte) (any, error) {
	p := &jsParser{s: data, line: 1, col: 1}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected %q after the value", p.peekText())
	}
	return v, nil
}

type jsParser struct {
	s         []byte
	i         int
	line, col int
}

// jsDepth bounds nesting, as hclconfig bounds a config's.
const jsDepth = 64

func (p *jsParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d, column %d: %s (pm2 evaluates a .json file as JavaScript; one that computes values must be loaded as ecosystem.config.js)", p.line, p.col, fmt.Sprintf(format, args...))
}

func (p *jsParser) peekText() string {
	end := min(p.i+12, len(p.s))
	return string(p.s[p.i:end])
}

func (p *jsParser) advance(n int) {
	for k := 0; k < n && p.i < len(p.s); k++ {
		if p.s[p.i] == '\n' {
			p.line, p.col = p.line+1, 1
		} else if p.s[p.i]&0xc0 != 0x80 {
			p.col++
		}
		p.i++
	}
}

// space skips whitespace and comments.
func (p *jsParser) space() error {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			p.advance(1)
		case bytes.HasPrefix(p.s[p.i:], []byte("\ufeff")), bytes.HasPrefix(p.s[p.i:], []byte("\u2028")), bytes.HasPrefix(p.s[p.i:], []byte("\u2029")):
			p.advance(3)
		case bytes.HasPrefix(p.s[p.i:], []byte("\u00a0")):
			p.advance(2)
		case bytes.HasPrefix(p.s[p.i:], []byte("//")):
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.advance(1)
			}
		case bytes.HasPrefix(p.s[p.i:], []byte("/*")):
			end := bytes.Index(p.s[p.i+2:], []byte("*/"))
			if end < 0 {
				return p.errorf("a /* comment is not closed")
			}
			p.advance(end + 4)
		default:
			return nil
		}
	}
	return nil
}

func (p *jsParser) value(depth int) (any, error) {
	if depth > jsDepth {
		return nil, p.errorf("nested deeper than %d", jsDepth)
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.i >= len(p.s) {
		return nil, p.errorf("the file ends where a value should be")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"' || c == '\'':
		return p.str()
	case c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9':
		return p.number()
	case isIdentStart(c):
		at := *p
		id := p.ident()
		switch id {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null", "undefined":
			return nil, nil
		}
		return nil, at.errorf("%q is a JavaScript expression, not data", id)
	}
	return nil, p.errorf("unexpected %q", p.peekText())
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}

func (p *jsParser) ident() string {
	start := p.i
	for p.i < len(p.s) && (isIdentStart(p.s[p.i]) || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
		p.advance(1)
	}
	return string(p.s[start:p.i])
}

func (p *jsParser) object(depth int) (any, error) {
	p.advance(1) // {
	m := map[string]any{}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.advance(1)
			return m, nil
		}
		if p.i >= len(p.s) {
			return nil, p.errorf("an object is not closed")
		}
		var key string
		switch c := p.s[p.i]; {
		case c == '"' || c == '\'':
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			key = k.(string)
		case c >= '0' && c <= '9':
			n, err := p.number()
			if err != nil {
				return nil, err
			}
			key = n.(json.Number).String()
		case isIdentStart(c):
			key = p.ident()
		default:
			return nil, p.errorf("expected a key, found %q", p.peekText())
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errorf("expected \":\" after the key %q", key)
		}
		p.advance(1)
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[key] = v // a later key wins, as in JavaScript
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.advance(1)
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			continue
		}
		if p.i >= len(p.s) {
			return nil, p.errorf("an object is not closed")
		}
		return nil, p.errorf("expected \",\" or \"}\", found %q", p.peekText())
	}
}

func (p *jsParser) array(depth int) (any, error) {
	p.advance(1) // [
	l := []any{}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.advance(1)
			return l, nil
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			return nil, p.errorf("an empty element (a hole) in an array")
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.advance(1)
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == ']' {
			continue
		}
		if p.i >= len(p.s) {
			return nil, p.errorf("an array is not closed")
		}
		return nil, p.errorf("expected \",\" or \"]\", found %q", p.peekText())
	}
}

// str reads a '...' or "..." string with JavaScript's escapes.
func (p *jsParser) str() (any, error) {
	q := p.s[p.i]
	p.advance(1)
	var b strings.Builder
	for {
		if p.i >= len(p.s) || p.s[p.i] == '\n' || p.s[p.i] == '\r' {
			return nil, p.errorf("a string is not closed on its line")
		}
		c := p.s[p.i]
		if c == q {
			p.advance(1)
			return b.String(), nil
		}
		if c != '\\' {
			// Text that is not UTF-8 reads as U+FFFD, byte by byte, as
			// when node decodes the file (and as encoding/json does).
			r, size := utf8.DecodeRune(p.s[p.i:])
			b.WriteRune(r)
			p.advance(size)
			continue
		}
		p.advance(1)
		if p.i >= len(p.s) {
			return nil, p.errorf("a string is not closed")
		}
		e := p.s[p.i]
		simple := map[byte]string{'n': "\n", 't': "\t", 'r': "\r", 'b': "\b", 'f': "\f", 'v': "\v", '0': "\x00", '\'': "'", '"': "\"", '\\': "\\", '/': "/", '\n': ""}
		if s, ok := simple[e]; ok && !(e == '0' && p.i+1 < len(p.s) && p.s[p.i+1] >= '0' && p.s[p.i+1] <= '9') {
			b.WriteString(s)
			p.advance(1)
			continue
		}
		switch e {
		case 'x', 'u':
			n := 2
			if e == 'u' {
				n = 4
			}
			hex := string(p.s[p.i+1 : min(p.i+1+n, len(p.s))])
			if e == 'u' && strings.HasPrefix(hex, "{") {
				end := bytes.IndexByte(p.s[p.i:], '}')
				if end < 0 {
					return nil, p.errorf("a \\u{ escape is not closed")
				}
				hex = string(p.s[p.i+2 : p.i+end])
				n = end
			}
			var r rune
			if _, err := fmt.Sscanf(hex, "%x", &r); err != nil || len(hex) == 0 || (len(hex) != n && !strings.HasPrefix(string(p.s[p.i+1:]), "{")) {
				return nil, p.errorf("a bad \\%c escape", e)
			}
			// A surrogate pair: JavaScript strings are UTF-16.
			if r >= 0xd800 && r < 0xdc00 && bytes.HasPrefix(p.s[p.i+1+n:], []byte(`\u`)) {
				var lo rune
				if _, err := fmt.Sscanf(string(p.s[p.i+3+n:min(p.i+7+n, len(p.s))]), "%x", &lo); err == nil && lo >= 0xdc00 && lo < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					n += 6
				}
			}
			b.WriteRune(r)
			p.advance(1 + n)
		default:
			// Any other escaped character is itself.
			b.WriteByte(e)
			p.advance(1)
		}
	}
}

// number reads a JavaScript number as written, as a json.Number in JSON's
// form.
func (p *jsParser) number() (any, error) {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte("+-.0123456789abcdefABCDEFxXoO_", p.s[p.i]) >= 0 {
		if (p.s[p.i] == '+' || p.s[p.i] == '-') && p.i > start && p.s[p.i-1] != 'e' && p.s[p.i-1] != 'E' {
			break
		}
		p.advance(1)
	}
	text := strings.TrimPrefix(string(p.s[start:p.i]), "+")
	neg := strings.HasPrefix(text, "-")
	digits := strings.TrimPrefix(text, "-")
	if len(digits) > 2 && (digits[:2] == "0x" || digits[:2] == "0X") {
		var n uint64
		if _, err := fmt.Sscanf(digits[2:], "%x", &n); err != nil {
			return nil, p.errorf("a bad number %q", text)
		}
		if neg {
			return json.Number(fmt.Sprintf("-%d", n)), nil
		}
		return json.Number(fmt.Sprintf("%d", n)), nil
	}
	if strings.HasPrefix(digits, ".") {
		digits = "0" + digits
	}
	if strings.HasSuffix(digits, ".") {
		digits += "0"
	}
	if neg {
		digits = "-" + digits
	}
	if !json.Valid([]byte(digits)) {
		return nil, p.errorf("a bad number %q", text)
	}
	return json.Number(digits), nil
}

// sortedKeys lists a map's keys in order, for messages.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
