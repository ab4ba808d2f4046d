package logmux

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A runner line about an app carries that app in About, in the live
// stream, in the history and in JSON; lines about other apps, or about
// the runner as a whole, do not.
func TestRunnerLinesCarryTheirApp(t *testing.T) {
	var out bytes.Buffer
	m := New(Options{Out: &out, Format: JSON})
	m.Declare([]App{{Name: "web", Instances: 2}, {Name: "web-2", Instances: 1}})
	m.Declare([]App{{Name: "web", Instances: 2}}) // web-2 removed by a reload
	recs, _, cancel := m.Subscribe(nil, 64)
	defer cancel()
	for msg, want := range map[string]string{
		"web.0 started (pid 1)":                "web",
		"web: reload complete":                 "web",
		"web-2: removed from the file":         "web-2",
		"web-2.0 (pid 3) exited with status 0": "web-2",
		"web 2 of 2 ready":                     "web",
		"webx.0 started":                       "",
		"web.x":                                "",
		"web":                                  "",
		"listening: http on 127.0.0.1:8080":    "",
		"received SIGTERM: stopping web":       "",
		"":                                     "",
	} {
		m.Printf("%s", msg)
		rec := <-recs
		if rec.About != want {
			t.Errorf("%q: About %q, want %q", msg, rec.About, want)
		}
		hist, _, _, c := m.Tail(nil, 1, 0)
		c()
		if len(hist) != 1 || hist[0].About != want {
			t.Errorf("%q in the history: %+v, want About %q", msg, hist, want)
		}
	}
	if !bytes.Contains(out.Bytes(), []byte(`"about":"web-2","line":"web-2: removed`)) {
		t.Errorf("JSON output lacks about:\n%s", out.Bytes())
	}
}

func FuzzRecordJSON(f *testing.F) {
	f.Add("web", 0, 42, 0, "+", "", []byte("hello"), false)
	f.Add("clusterrun", -1, 1, 2, "", "web", []byte("web.0 started\x00\xff\u2028"), true)
	f.Fuzz(func(t *testing.T, app string, inst, pid, stream int, tag, about string, line []byte, cut bool) {
		r := Record{Time: time.Unix(0, 1700000000123456789).UTC(), App: app, Instance: inst, PID: pid,
			Stream: Stream(((stream % 3) + 3) % 3), Tag: tag, About: about, Line: line, Cut: cut}
		b := AppendJSON(nil, &r)
		if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
			t.Fatalf("not one line: %q", b)
		}
		got, err := ParseJSON(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		// Invalid UTF-8 becomes U+FFFD on the way; compare with what a
		// valid string of the same input would give.
		want := r
		want.App, want.Tag, want.About, want.Line = toValid(app), toValid(tag), toValid(about), []byte(toValid(string(line)))
		if !got.Time.Equal(want.Time) || got.App != want.App || got.Instance != want.Instance || got.PID != want.PID ||
			got.Stream != want.Stream || got.Tag != want.Tag || got.About != want.About || !bytes.Equal(got.Line, want.Line) || got.Cut != want.Cut {
			t.Fatalf("round trip of %+v gave %+v", want, got)
		}
	})
}

// toValid replaces each invalid byte with U+FFFD, as the JSON writer does.
func toValid(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // ranging yields U+FFFD for each invalid byte
	}
	return b.String()
}
