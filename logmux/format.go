package logmux

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fatih/color"
)

// Format selects how records are written.
type Format int

const (
	// Text is the human format: "web.0      | message".
	Text Format = iota
	// JSON is one object per line, for log shippers.
	JSON
)

// runnerName is the label and JSON app of the runner's own lines.
const runnerName = "clusterrun"

// cutMarker ends a text piece that is continued in the next piece, so that a
// reader can tell a cut from a line that really ended there.
const cutMarker = " …"

// palette gives each app a distinguishable label color, in declaration order.
// Red is left out on purpose: it reads as "error" and stderr is already marked
// by its separator.
var palette = []color.Attribute{
	color.FgCyan,
	color.FgYellow,
	color.FgGreen,
	color.FgMagenta,
	color.FgBlue,
	color.FgHiCyan,
	color.FgHiYellow,
	color.FgHiGreen,
	color.FgHiMagenta,
	color.FgHiBlue,
}

// Formatter formats Records exactly like the Mux does; `clusterrun logs`
// clients use it to print records received from a runner.
//
// Width is the label column width; it is never less than len("clusterrun").
// The Mux uses the widest label plus one column for a Record's Tag, which is
// printed right after the label ("web.1+").
// Colors are assigned to apps in the order the Formatter first sees them,
// which matches the runner's terminal when records arrive in config order.
//
// A Formatter caches prefixes, so it must not be used by several goroutines
// at once.
type Formatter struct {
	Format     Format
	Timestamps bool
	Color      bool
	Width      int

	st *styler
}

// Append appends r, formatted and ending in "\n", to dst and returns the
// extended buffer.
func (f *Formatter) Append(dst []byte, r *Record) []byte {
	if f.Format == JSON {
		return appendJSON(dst, r)
	}
	if f.st == nil || f.st.color != f.Color {
		f.st = newStyler(f.Color)
	}
	p := f.st.prefix(r.App, r.Instance, r.Tag, r.Stream == Runner, labelWidth(f.Width))
	return appendText(dst, r, p, f.Timestamps)
}

// labelWidth keeps runner lines aligned with app lines whatever width the
// caller asks for.
func labelWidth(w int) int {
	return max(w, len(runnerName))
}

// prefix is the precomputed start of a text line for one source: label and
// tag padded to the column width, separator, and color escapes around both.
type prefix struct {
	out []byte // "web.0      | "
	err []byte // "web.0      ! "
}

type prefixKey struct {
	app    string
	inst   int
	tag    string
	width  int
	runner bool
}

// styler owns the app→color assignment and the prefix cache. It is not
// synchronized; the Mux guards its styler with a mutex.
type styler struct {
	color bool
	slots map[string]int // palette slot of each app, never reassigned
	cache map[prefixKey]*prefix
}

func newStyler(colorOn bool) *styler {
	return &styler{
		color: colorOn,
		slots: make(map[string]int),
		cache: make(map[prefixKey]*prefix),
	}
}

// slot returns app's palette slot, giving a new app the next one. Slots are
// never freed so that an app that is removed and comes back, or is
// re-declared in another order, keeps its color.
func (s *styler) slot(app string) int {
	i, ok := s.slots[app]
	if !ok {
		i = len(s.slots)
		s.slots[app] = i
	}
	return i
}

func (s *styler) prefix(app string, inst int, tag string, runner bool, width int) *prefix {
	k := prefixKey{app: app, inst: inst, tag: tag, width: width, runner: runner}
	if p, ok := s.cache[k]; ok {
		return p
	}
	label := app
	if inst >= 0 {
		label = app + "." + strconv.Itoa(inst)
	}
	label += tag
	padded := label + strings.Repeat(" ", max(width-utf8.RuneCountInString(label), 0))

	var c *color.Color
	if runner {
		c = color.New(color.Bold)
	} else {
		c = color.New(palette[s.slot(app)%len(palette)])
	}
	// Explicit, because color.New consults NO_COLOR and the Sprint methods
	// consult the unsynchronized global color.NoColor; main has already made
	// the decision and passed it in.
	if s.color {
		c.EnableColor()
	} else {
		c.DisableColor()
	}
	p := &prefix{
		out: []byte(c.Sprint(padded+" |") + " "),
		err: []byte(c.Sprint(padded+" !") + " "),
	}
	s.cache[k] = p
	return p
}

// appendText appends "[15:04:05.000 ]PREFIX line[ …]\n".
func appendText(dst []byte, r *Record, p *prefix, timestamps bool) []byte {
	return appendTextPiece(appendTextHead(dst, r, p, timestamps), r.Line, r.Cut)
}

// appendTextHead appends what every line of r's source read at r.Time starts
// with: "[15:04:05.000 ]PREFIX ". The Mux builds it once per batch.
func appendTextHead(dst []byte, r *Record, p *prefix, timestamps bool) []byte {
	if timestamps {
		dst = appendClock(dst, r.Time.Local())
		dst = append(dst, ' ')
	}
	if r.Stream == Stderr {
		return append(dst, p.err...)
	}
	return append(dst, p.out...)
}

// appendTextPiece appends the rest of a text line: "line[ …]\n".
func appendTextPiece(dst, line []byte, cut bool) []byte {
	dst = append(dst, line...)
	if cut {
		dst = append(dst, cutMarker...)
	}
	return append(dst, '\n')
}

// appendClock appends "15:04:05.000". Hand-rolled because it runs once per
// line; time.AppendFormat parses its layout every call.
func appendClock(dst []byte, t time.Time) []byte {
	h, m, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst,
		byte('0'+h/10), byte('0'+h%10), ':',
		byte('0'+m/10), byte('0'+m%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

// appendJSON appends one JSON object and "\n". It is written by hand because
// encoding/json's reflection would cost allocations on every line.
func appendJSON(dst []byte, r *Record) []byte {
	return appendJSONPiece(appendJSONHead(dst, r), r.Line, r.Cut)
}

// appendJSONHead appends the members before the line, up to `"line":`; they
// are the same for every line of one batch, so the Mux builds them once.
func appendJSONHead(dst []byte, r *Record) []byte {
	dst = append(dst, `{"time":"`...)
	// UTC so that shippers comparing lines from several hosts need no zone
	// arithmetic; RFC3339Nano still carries the offset either way.
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","app":`...)
	dst = appendJSONString(dst, r.App)
	dst = append(dst, `,"instance":`...)
	dst = strconv.AppendInt(dst, int64(r.Instance), 10)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(r.PID), 10)
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, r.Stream.String())
	if r.Tag != "" {
		dst = append(dst, `,"tag":`...)
		dst = appendJSONString(dst, r.Tag)
	}
	if r.About != "" {
		dst = append(dst, `,"about":`...)
		dst = appendJSONString(dst, r.About)
	}
	return append(dst, `,"line":`...)
}

// appendJSONPiece appends the line and the end of the object.
func appendJSONPiece(dst, line []byte, cut bool) []byte {
	dst = appendJSONBytes(dst, line)
	if cut {
		dst = append(dst, `,"cut":true`...)
	}
	return append(dst, "}\n"...)
}

// jsonSafe reports the ASCII bytes that need no escaping inside a JSON
// string. '<', '>' and '&' are left alone: nothing embeds these lines in HTML.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString is appendJSONBytes for the short strings (app names) that
// are almost always plain ASCII; only the rare other case pays for a copy.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || !jsonSafe[s[i]] {
			return appendJSONBytes(dst, []byte(s))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONBytes appends s as a JSON string. Invalid UTF-8 becomes U+FFFD so
// that the output is always valid JSON; U+2028 and U+2029 are escaped because
// JavaScript consumers treat them as line terminators.
func appendJSONBytes(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, known to need no escaping
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
