package top

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/status"
)

// testModel is a model whose feed talks to no runner: the commands it
// returns are not run here.
func testModel(t *testing.T) model {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &feed{c: control.DialSocket(filepath.Join(t.TempDir(), "none.sock")), ctx: ctx, send: func(tea.Msg) {}}
	return newModel("/srv/cluster.hcl", f)
}

func sample() status.Runner {
	now := time.Now()
	inst := func(app string, n, pid int, role string) status.Instance {
		return status.Instance{App: app, Instance: n, PID: pid, State: "ready", Role: role, Release: 1, Started: now.Add(-time.Minute),
			CPUPercent: 1.5, PSSBytes: 3 << 20}
	}
	return status.Runner{PID: 100, Phase: "running", Started: now.Add(-time.Hour), Config: "/srv/cluster.hcl", Apps: []status.App{
		{Name: "web", State: "ready", Instances: 2, Procs: []status.Instance{inst("web", 0, 201, "serving"), inst("web", 1, 202, "serving")}},
		{Name: "worker", State: "stopped", Instances: 1},
	}}
}

func update(m model, msgs ...tea.Msg) model {
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(model)
	}
	return m
}

// Every screen is exactly the terminal's height, no line wider than it,
// at 80x24 and after resizes.
func TestViewFitsTheTerminal(t *testing.T) {
	m := update(testModel(t), statusMsg{st: sample(), sampled: true})
	for _, size := range [][2]int{{80, 24}, {120, 40}, {40, 10}, {200, 8}} {
		m = update(m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for _, help := range []bool{false, true} {
			m.help = help
			lines := strings.Split(m.View(), "\n")
			if len(lines) != size[1] {
				t.Errorf("%dx%d help=%v: %d lines", size[0], size[1], help, len(lines))
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%dx%d: a line of %d cells: %q", size[0], size[1], w, l)
				}
			}
		}
	}
	m.help = false
	m = update(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	v := ansi.Strip(m.View())
	for _, want := range []string{"pid 100 running", "web       0    201", "web       1    202", "worker", "stopped", "1.5%", "3.0M"} {
		if !strings.Contains(v, want) {
			t.Errorf("the screen lacks %q:\n%s", want, v)
		}
	}
}

// An event shows on the status line and asks for a status read; a
// command's answer stays there over routine events; the runner's going
// and coming back are said.
func TestStatusLine(t *testing.T) {
	m := update(testModel(t), statusMsg{st: sample(), sampled: true})
	next, cmd := m.Update(eventMsg{ev: control.Event{Lifecycle: status.Lifecycle{Kind: status.Crashed, App: "web", Instance: 0, PID: 201, Reason: "exited with status 1"}}})
	m = next.(model)
	if !strings.Contains(m.line, "web.0 (pid 201) crashed: exited with status 1") || !m.lineErr || cmd == nil {
		t.Errorf("after a crash event: %q err=%v cmd=%v", m.line, m.lineErr, cmd != nil)
	}
	m = update(m, doneMsg{what: "reload web", a: control.Answer{Message: "web: reload complete: 2 of 2 instances replaced"}})
	m = update(m, eventMsg{ev: control.Event{Lifecycle: status.Lifecycle{Kind: status.Scaled, App: "web", Instance: -1, Count: 2}}})
	if m.line != "reload web: web: reload complete: 2 of 2 instances replaced" || m.lineErr {
		t.Errorf("the answer did not stay: %q", m.line)
	}
	m = update(m, doneMsg{what: "scale web +1", err: &control.Error{Status: 409, Answer: control.Answer{Error: "cannot scale to 4097"}}})
	if m.line != "scale web +1: cannot scale to 4097" || !m.lineErr {
		t.Errorf("a refused command: %q", m.line)
	}
	m = update(m, downMsg{err: context.Canceled})
	if !m.gone || !strings.Contains(m.line, "the runner is gone") || !strings.Contains(ansi.Strip(m.View()), "runner gone") {
		t.Errorf("gone: %v %q", m.gone, m.line)
	}
	m = update(m, statusMsg{st: sample()})
	if m.gone || m.line != "the runner is back" {
		t.Errorf("back: %v %q", m.gone, m.line)
	}
}

// Keys: the selection moves and stays on its instance when rows change;
// a command key answers with a command and says it is under way; keys
// typed in one burst are each a key; / collects a search.
func TestKeys(t *testing.T) {
	m := update(testModel(t), statusMsg{st: sample(), sampled: true})
	m = update(m, tea.KeyMsg{Type: tea.KeyDown})
	if r, _ := m.selected(); r.inst.PID != 202 {
		t.Fatalf("down selects %+v", r)
	}
	st := sample()
	st.Apps[0].Procs = append([]status.Instance{{App: "web", Instance: 0, PID: 301, State: "starting", Role: "replacement"}}, st.Apps[0].Procs...)
	m = update(m, statusMsg{st: st})
	if r, _ := m.selected(); r.inst.PID != 202 {
		t.Errorf("the selection moved off web.1 when a row was added: %+v", r)
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("r")})
	m = next.(model)
	if cmd == nil || m.line != "reload web…" || m.busy != 1 {
		t.Errorf("r: %q busy=%d cmd=%v", m.line, m.busy, cmd != nil)
	}
	m = update(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/err x")}, tea.KeyMsg{Type: tea.KeyEnter})
	if m.search != "err x" || m.searching || m.paused {
		t.Errorf("a burst of keys: search %q searching=%v paused=%v", m.search, m.searching, m.paused)
	}
	_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd == nil || cmd() != tea.Quit() {
		t.Error("q does not quit")
	}
}

// Instances behind an http listener show their last minute (REQ/S, P50,
// P99) where the terminal has room; a runner without one never shows the
// columns.
func TestViewHTTPColumns(t *testing.T) {
	st := sample()
	st.Apps[0].Procs[0].HTTP = &status.HTTPRecent{PerSec: 812.3, P50: 640 * time.Microsecond, P99: 23 * time.Millisecond}
	st.Apps[0].Procs[1].HTTP = &status.HTTPRecent{}
	m := update(testModel(t), statusMsg{st: st, sampled: true})
	for _, tc := range []struct {
		width int
		show  bool
	}{{80, false}, {100, false}, {101, true}, {140, true}} {
		m = update(m, tea.WindowSizeMsg{Width: tc.width, Height: 24})
		v := ansi.Strip(m.View())
		if got := strings.Contains(v, "REQ/S") && strings.Contains(v, "812") && strings.Contains(v, "640µs") && strings.Contains(v, "23ms"); got != tc.show {
			t.Errorf("%d columns: http columns shown %v, want %v:\n%s", tc.width, got, tc.show, v)
		}
	}
	m = update(testModel(t), statusMsg{st: sample(), sampled: true}, tea.WindowSizeMsg{Width: 200, Height: 24})
	if v := ansi.Strip(m.View()); strings.Contains(v, "REQ/S") {
		t.Errorf("no http listener, yet REQ/S:\n%s", v)
	}
}
