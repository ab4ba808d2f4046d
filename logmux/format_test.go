package logmux

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// step is one input to a golden case: a runner message when src is nil,
// otherwise the whole content of one source.
type step struct {
	src  *Source
	text string
}

func from(app string, inst int, s Stream, text string) step {
	return step{src: &Source{App: app, Instance: inst, PID: 1000 + inst, Stream: s}, text: text}
}

func runner(text string) step { return step{text: text} }

// tagged gives s's source a Tag set to tag.
func tagged(s step, tag string) step {
	src := *s.src
	src.Tag = &Tag{}
	src.Tag.Set(tag)
	s.src = &src
	return s
}

// run feeds the steps one after the other, so the expected output is
// deterministic, and returns what the mux wrote.
func run(t *testing.T, opts Options, declare [][]App, steps []step) string {
	t.Helper()
	out := &lineBuffer{t: t}
	opts.Out = out
	opts.Now = fixedClock
	m := New(opts)
	for _, d := range declare {
		m.Declare(d)
	}
	for i, s := range steps {
		if s.src == nil {
			m.Printf("%s", s.text)
			continue
		}
		waitClosed(t, m.Attach(strings.NewReader(s.text), *s.src), "step "+strconv.Itoa(i)+" to be emitted")
	}
	return out.String()
}

const (
	cyan   = "\x1b[36m"
	yellow = "\x1b[33m"
	green  = "\x1b[32m"
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	unbold = "\x1b[22m"
)

func TestTextGolden(t *testing.T) {
	web2 := [][]App{{{Name: "web", Instances: 2}}}
	tests := []struct {
		name    string
		opts    Options
		declare [][]App
		steps   []step
		want    string
	}{{
		name:    "plain",
		declare: web2,
		steps: []step{
			from("web", 0, Stdout, "hello\n"),
			from("web", 1, Stderr, "oops\n"),
			runner("started web"),
		},
		want: "web.0      | hello\n" +
			"web.1      ! oops\n" +
			"clusterrun | started web\n",
	}, {
		name:    "timestamps",
		opts:    Options{Timestamps: true},
		declare: web2,
		steps: []step{
			from("web", 0, Stdout, "hello\n"),
			runner("started web"),
		},
		want: "14:07:09.123 web.0      | hello\n" +
			"14:07:09.123 clusterrun | started web\n",
	}, {
		name:    "color",
		opts:    Options{Color: true},
		declare: [][]App{{{Name: "web", Instances: 1}, {Name: "api", Instances: 2}}},
		steps: []step{
			from("web", 0, Stdout, "a\n"),
			from("api", 1, Stderr, "b\n"),
			runner("r"),
		},
		want: cyan + "web.0      |" + reset + " a\n" +
			yellow + "api.1      !" + reset + " b\n" +
			bold + "clusterrun |" + unbold + " r\n",
	}, {
		name:    "color and timestamps",
		opts:    Options{Color: true, Timestamps: true},
		declare: web2,
		steps:   []step{from("web", 1, Stdout, "\x1b[31mapp's own color\x1b[0m\n")},
		want:    "14:07:09.123 " + cyan + "web.1      |" + reset + " \x1b[31mapp's own color\x1b[0m\n",
	}, {
		name:    "stable colors on re-declare",
		opts:    Options{Color: true},
		declare: [][]App{{{Name: "web", Instances: 1}, {Name: "api", Instances: 1}}, {{Name: "worker", Instances: 1}, {Name: "api", Instances: 1}, {Name: "web", Instances: 1}}},
		steps: []step{
			from("worker", 0, Stdout, "w\n"),
			from("api", 0, Stdout, "a\n"),
			from("web", 0, Stdout, "x\n"),
		},
		want: green + "worker.0   |" + reset + " w\n" +
			yellow + "api.0      |" + reset + " a\n" +
			cyan + "web.0      |" + reset + " x\n",
	}, {
		name:    "padded to widest label",
		declare: [][]App{{{Name: "web", Instances: 2}, {Name: "api-gateway", Instances: 12}}},
		steps: []step{
			from("web", 0, Stdout, "x\n"),
			from("api-gateway", 11, Stdout, "y\n"),
			runner("r"),
		},
		// One column more than the widest label, for a Tag.
		want: "web.0           | x\n" +
			"api-gateway.11  | y\n" +
			"clusterrun      | r\n",
	}, {
		name:    "width follows the last declaration",
		declare: [][]App{{{Name: "api-gateway", Instances: 12}}, {{Name: "web", Instances: 10}}},
		steps:   []step{from("web", 9, Stdout, "x\n"), from("api-gateway", 11, Stdout, "draining\n")},
		want:    "web.9      | x\napi-gateway.11 | draining\n",
	}, {
		name:  "undeclared app",
		steps: []step{from("worker", 3, Stdout, "x\n")},
		want:  "worker.3   | x\n",
	}, {
		name:    "cut pieces carry a marker",
		opts:    Options{MaxLine: 4},
		declare: web2,
		steps:   []step{from("web", 0, Stdout, "abcdefghij\nabcd\n")},
		want: "web.0      | abcd …\n" +
			"web.0      | efgh …\n" +
			"web.0      | ij\n" +
			"web.0      | abcd\n",
	}, {
		name:    "tags keep the columns",
		declare: [][]App{{{Name: "web", Instances: 2}, {Name: "api-gateway", Instances: 12}}},
		steps: []step{
			tagged(from("web", 0, Stdout, "new\n"), "+"),
			tagged(from("web", 0, Stderr, "old\n"), "-"),
			tagged(from("web", 0, Stdout, "serving\n"), ""),
			tagged(from("api-gateway", 11, Stdout, "new\n"), "+"),
			from("web", 1, Stdout, "untagged\n"),
			runner("r"),
		},
		want: "web.0+          | new\n" +
			"web.0-          ! old\n" +
			"web.0           | serving\n" +
			"api-gateway.11+ | new\n" +
			"web.1           | untagged\n" +
			"clusterrun      | r\n",
	}, {
		name:    "tags in color",
		opts:    Options{Color: true},
		declare: web2,
		steps:   []step{tagged(from("web", 1, Stdout, "a\n"), "+")},
		want:    cyan + "web.1+     |" + reset + " a\n",
	}, {
		name:  "crlf, empty lines and a trailing partial line",
		steps: []step{from("web", 0, Stdout, "a\r\n\n\r\nlast")},
		want: "web.0      | a\n" +
			"web.0      | \n" +
			"web.0      | \n" +
			"web.0      | last\n",
	}, {
		name:  "runner message with newlines",
		steps: []step{runner("one\ntwo\n")},
		want:  "clusterrun | one\nclusterrun | two\n",
	}, {
		name:  "long runner message is cut too",
		opts:  Options{MaxLine: 4},
		steps: []step{runner("abcdef")},
		want:  "clusterrun | abcd …\nclusterrun | ef\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(t, tt.opts, tt.declare, tt.steps); got != tt.want {
				t.Errorf("output mismatch\ngot:\n%s\nwant:\n%s\ngot  %q\nwant %q", got, tt.want, got, tt.want)
			}
		})
	}
}

func TestJSONGolden(t *testing.T) {
	// The text timestamp is local; JSON is UTC, which depends on the zone.
	ts := t0.UTC().Format(time.RFC3339Nano)
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name  string
		opts  Options
		steps []step
		want  string
	}{{
		name: "stdout, stderr and runner",
		opts: Options{Timestamps: true, Color: true}, // both ignored by JSON
		steps: []step{
			from("web", 0, Stdout, "hello\n"),
			from("web", 1, Stderr, "oops\n"),
			runner("started web"),
		},
		want: `{"time":"` + ts + `","app":"web","instance":0,"pid":1000,"stream":"stdout","line":"hello"}` + "\n" +
			`{"time":"` + ts + `","app":"web","instance":1,"pid":1001,"stream":"stderr","line":"oops"}` + "\n" +
			`{"time":"` + ts + `","app":"clusterrun","instance":-1,"pid":` + pid + `,"stream":"runner","line":"started web"}` + "\n",
	}, {
		name:  "tag only when set",
		steps: []step{tagged(from("web", 0, Stdout, "a\n"), "+"), tagged(from("web", 0, Stdout, "b\n"), "")},
		want: `{"time":"` + ts + `","app":"web","instance":0,"pid":1000,"stream":"stdout","tag":"+","line":"a"}` + "\n" +
			`{"time":"` + ts + `","app":"web","instance":0,"pid":1000,"stream":"stdout","line":"b"}` + "\n",
	}, {
		name:  "cut",
		opts:  Options{MaxLine: 3},
		steps: []step{from("web", 0, Stdout, "abcd\n")},
		want: `{"time":"` + ts + `","app":"web","instance":0,"pid":1000,"stream":"stdout","line":"abc","cut":true}` + "\n" +
			`{"time":"` + ts + `","app":"web","instance":0,"pid":1000,"stream":"stdout","line":"d"}` + "\n",
	}, {
		name:  "escapes",
		steps: []step{from(`we"b`, 0, Stdout, "tab\there \"q\" \\ \x00\x1b[1m \u2028\xff\n")},
		want:  `{"time":"` + ts + `","app":"we\"b","instance":0,"pid":1000,"stream":"stdout","line":"tab\there \"q\" \\ \u0000\u001b[1m \u2028\ufffd"}` + "\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format = JSON
			got := run(t, tt.opts, nil, tt.steps)
			if got != tt.want {
				t.Errorf("output mismatch\ngot  %s\nwant %s", got, tt.want)
			}
			for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if !json.Valid([]byte(l)) {
					t.Errorf("invalid JSON: %s", l)
				}
			}
		})
	}
}

// TestJSONStringMatchesEncodingJSON holds the hand-written encoder to
// encoding/json (minus HTML escaping) on awkward and random inputs.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		"", "plain", `"\`, "\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f",
		"\u2028\u2029", "é€😀", "\xff", "\xe2\x82", "a\xe2\x82\xacb\xed\xa0\x80", "<a&b>",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		checkJSONString(t, in)
	}
}

func FuzzJSONString(f *testing.F) {
	f.Add("a\"b\\c\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, in string) { checkJSONString(t, in) })
}

func checkJSONString(t *testing.T, in string) {
	t.Helper()
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	got := appendJSONBytes(nil, []byte(in))
	if string(got) != strings.TrimSuffix(want.String(), "\n") {
		t.Errorf("appendJSONBytes(%q) = %s, want %s", in, got, want.String())
	}
	if s := appendJSONString(nil, in); !bytes.Equal(s, got) {
		t.Errorf("appendJSONString(%q) = %s, want %s", in, s, got)
	}
	if !json.Valid(got) {
		t.Errorf("appendJSONBytes(%q) = %s is not valid JSON", in, got)
	}
}

// TestFormatterMatchesMux checks that a `clusterrun logs` client printing the
// records it receives reproduces the runner's own output byte for byte.
func TestFormatterMatchesMux(t *testing.T) {
	for _, opts := range []Options{
		{Color: true, Timestamps: true, MaxLine: 5},
		{Format: JSON, MaxLine: 5},
	} {
		out := &lineBuffer{t: t}
		opts.Out, opts.Now = out, fixedClock
		m := New(opts)
		m.Declare([]App{{Name: "web", Instances: 2}, {Name: "api-gateway", Instances: 11}})
		recs, _, cancel := m.Subscribe(nil, 100)
		tag := &Tag{}
		tag.Set("-")
		waitClosed(t, m.Attach(strings.NewReader("hello\nlonger line\n"), Source{App: "web", Instance: 1, PID: 7, Tag: tag}), "web output")
		waitClosed(t, m.Attach(strings.NewReader("err\n"), Source{App: "api-gateway", Instance: 10, PID: 8, Stream: Stderr}), "api output")
		m.Printf("done")
		cancel()
		// `clusterrun logs -n` prints the history the same way.
		hist, _, _, cancelTail := m.Tail(nil, 100, 0)
		cancelTail()

		for _, src := range []struct {
			name string
			recs func(yield func(Record) bool)
		}{
			{"subscription", func(yield func(Record) bool) {
				for r := range recs {
					yield(r)
				}
			}},
			{"history", slices.Values(hist)},
		} {
			f := &Formatter{Format: opts.Format, Timestamps: opts.Timestamps, Color: opts.Color, Width: len("api-gateway.10") + tagColumn}
			var got []byte
			for r := range src.recs {
				got = f.Append(got, &r)
			}
			if string(got) != out.String() {
				t.Errorf("Formatter output of the %s differs from the mux (format %d)\nformatter %q\nmux       %q", src.name, opts.Format, got, out.String())
			}
		}
	}
}

func TestFormatterZeroWidthAlignsWithRunner(t *testing.T) {
	var f Formatter
	b := f.Append(nil, &Record{App: "web", Instance: 0, Line: []byte("x")})
	b = f.Append(b, &Record{App: runnerName, Instance: -1, Stream: Runner, Line: []byte("y")})
	if want := "web.0      | x\nclusterrun | y\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	f.Color = true // switching color must not reuse prefixes built without it
	if b := f.Append(nil, &Record{App: "web", Instance: 0, Line: []byte("x")}); !bytes.HasPrefix(b, []byte(cyan)) {
		t.Errorf("got %q, want a cyan label after enabling color", b)
	}
}

func TestStreamString(t *testing.T) {
	for s, want := range map[Stream]string{Stdout: "stdout", Stderr: "stderr", Runner: "runner", 7: "Stream(7)"} {
		if got := s.String(); got != want {
			t.Errorf("Stream(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestCutPointKeepsRunes(t *testing.T) {
	line := strings.Repeat("aé€😀", 50)
	for maxLine := 4; maxLine < 20; maxLine++ {
		rest := []byte(line)
		var joined []byte
		for len(rest) > maxLine {
			k := cutPoint(rest, maxLine)
			if k <= 0 || k > maxLine {
				t.Fatalf("cutPoint(maxLine=%d) = %d, want 1..%d", maxLine, k, maxLine)
			}
			if !utf8.Valid(rest[:k]) {
				t.Fatalf("maxLine=%d: piece %q is not valid UTF-8", maxLine, rest[:k])
			}
			joined = append(joined, rest[:k]...)
			rest = rest[k:]
		}
		if joined = append(joined, rest...); string(joined) != line {
			t.Fatalf("maxLine=%d: pieces do not add up to the line", maxLine)
		}
	}
}
