package top

import (
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/status"
)

// Messages from the feeds and commands to Update.
type (
	// statusMsg is a status read: sampled (CPU and memory measured) by
	// the once-a-second tick, or not, after an event or at connect.
	statusMsg struct {
		st      status.Runner
		sampled bool
	}
	// eventMsg is one event of the stream.
	eventMsg struct{ ev control.Event }
	// downMsg: the event stream ended or could not be opened: the runner
	// is gone (or was never there).
	downMsg struct{ err error }
	// logMsg is one log record of the pane's scope.
	logMsg struct {
		scope string
		rec   logmux.Record
	}
	// doneMsg is the runner's answer to a key's command.
	doneMsg struct {
		what string
		a    control.Answer
		err  error
	}
	// logResetMsg: the log stream of scope starts again from its history.
	logResetMsg struct{ scope string }
	tickMsg     time.Time
	statusErr   struct{ err error }
)

// answerStays is how long a command's answer keeps the status line from
// routine events.
const answerStays = 3 * time.Second

// maxLogLines is how many lines the log pane keeps.
const maxLogLines = 500

// row is one line of the table: an instance, or an app without any.
type row struct {
	app  string
	inst status.Instance
	none bool // the app has no instance (stopped, waiting)
	// appState is the app's state, for rows without an instance.
	appState string
}

// usage is the last sampled CPU and memory of a pid.
type usage struct {
	cpu float64
	mem int64
}

// trend is one app's sparklines.
type trend struct {
	cpu, mem, restarts ring
}

// model is the whole state of the view. Only Update changes it.
type model struct {
	target string
	w, h   int

	st   *status.Runner
	rows []row
	sel  int
	// usage keeps the last sample per pid: a status read after an event
	// is not sampled, and must not blank the figures.
	usage  map[int]usage
	trends map[string]*trend

	logs      []logmux.Record
	logScope  string // "web" or "web.2"
	paused    bool
	held      int // lines that arrived while paused
	searching bool
	search    string

	line    string // the status line
	lineErr bool
	help    bool
	gone    bool
	goneWhy string
	busy    int // commands waiting for the runner's answer
	// answered is when the status line last showed a command's answer.
	answered time.Time
	lastSeen time.Time

	// cmds reach the runner (the feed owns the client).
	feed *feed
}

func newModel(target string, f *feed) model {
	return model{target: target, w: 80, h: 24, usage: map[int]usage{}, trends: map[string]*trend{}, feed: f,
		line: "connecting…"}
}

func (m model) Init() tea.Cmd {
	return tea.Batch(tick(), m.feed.fetch(true))
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
	case tea.KeyMsg:
		return m.key(msg)
	case tickMsg:
		// The sampled read is the only periodic one: CPU and memory are
		// samples by nature.
		return m, tea.Batch(tick(), m.feed.fetch(true))
	case statusMsg:
		m.setStatus(msg.st, msg.sampled)
	case statusErr:
		// The event stream says whether the runner is gone.
	case eventMsg:
		// The status line tells what a person must know (a crash, a
		// restart, an outcome); the routine steps show in the table.
		// An answer to a command stays a few seconds: the events of the
		// command itself arrive about when it does.
		bad := msg.ev.Kind == status.Crashed || msg.ev.Kind == status.GaveUp || msg.ev.Kind == status.Rejected
		if notable(msg.ev) && (bad || time.Since(m.answered) > answerStays) {
			m.line, m.lineErr = describe(msg.ev), msg.ev.Kind == status.Crashed || msg.ev.Kind == status.GaveUp || msg.ev.Kind == status.Rejected
			if msg.ev.Kind == status.RolloutEnded && msg.ev.Outcome != status.ReloadCompleted {
				m.lineErr = true
			}
		}
		// The table is the runner's model: read it again (coalesced by
		// the feed, so that a burst of events is one read).
		return m, m.feed.refresh()
	case downMsg:
		if !m.gone {
			m.gone, m.goneWhy = true, msg.err.Error()
			m.line, m.lineErr = "the runner is gone: waiting for it to come back (q quits)", true
		}
	case logResetMsg:
		if msg.scope == m.logScope {
			m.logs, m.held = nil, 0
		}
	case logMsg:
		if msg.scope != m.logScope {
			break // a line of the scope before the last change
		}
		m.logs = append(m.logs, msg.rec)
		if len(m.logs) > maxLogLines {
			m.logs = m.logs[len(m.logs)-maxLogLines:]
		}
		if m.paused {
			m.held++
		}
	case doneMsg:
		m.busy--
		m.answered = time.Now()
		if msg.err != nil {
			m.line, m.lineErr = msg.what+": "+firstLine(msg.err.Error()), true
			if msg.a.Message != "" {
				m.line += " — " + firstLine(msg.a.Message)
			}
		} else {
			m.line, m.lineErr = msg.what+": "+oneLine(msg.a.Message), false
		}
		return m, m.feed.refresh()
	}
	return m, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")), " ")
}

// setStatus takes a status read: the table's rows, the samples, and (on
// a sampled read) one more point of every trend.
func (m *model) setStatus(st status.Runner, sampled bool) {
	if m.gone {
		m.gone = false
		m.line, m.lineErr = "the runner is back", false
	} else if m.st == nil {
		m.line = fmt.Sprintf("connected to runner pid %d", st.PID)
	}
	if sampled {
		seen := map[int]bool{}
		for _, a := range st.Apps {
			for _, p := range a.Procs {
				if p.PID != 0 && p.CPUPercent >= 0 {
					m.usage[p.PID] = usage{cpu: p.CPUPercent, mem: memOf(p)}
					seen[p.PID] = true
				}
			}
		}
		for pid := range m.usage {
			if !seen[pid] {
				delete(m.usage, pid)
			}
		}
	}
	var sel string
	if m.sel < len(m.rows) {
		sel = m.rows[m.sel].key()
	}
	m.rows = m.rows[:0]
	for _, a := range st.Apps {
		if len(a.Procs) == 0 {
			m.rows = append(m.rows, row{app: a.Name, none: true, appState: a.State})
		}
		for _, p := range a.Procs {
			m.rows = append(m.rows, row{app: a.Name, inst: p, appState: a.State})
		}
		if sampled {
			t := m.trends[a.Name]
			if t == nil {
				t = &trend{}
				m.trends[a.Name] = t
			}
			var cpu float64
			var mem int64
			restarts := 0
			for _, p := range a.Procs {
				u := m.usage[p.PID]
				cpu += u.cpu
				mem += u.mem
				restarts += p.Restarts
			}
			t.cpu.add(cpu)
			t.mem.add(float64(mem))
			t.restarts.add(float64(restarts))
		}
	}
	// Keep the selection on the same instance when rows move.
	m.sel = min(m.sel, max(len(m.rows)-1, 0))
	for i, r := range m.rows {
		if r.key() == sel {
			m.sel = i
			break
		}
	}
	m.st = &st
	m.lastSeen = time.Now()
	if m.logScope == "" && len(m.rows) > 0 {
		m.setScope(m.rows[m.sel].app)
	}
}

// memOf is what the table shows as memory: the group's PSS (-1 unknown).
func memOf(p status.Instance) int64 { return p.PSSBytes }

func (r row) key() string {
	if r.none {
		return r.app
	}
	return fmt.Sprintf("%s.%d/%s", r.app, r.inst.Instance, r.inst.Role)
}

// setScope points the log pane at an app ("web") or instance ("web.2").
func (m *model) setScope(scope string) {
	if scope == m.logScope {
		return
	}
	m.logScope, m.logs, m.held = scope, nil, 0
	m.feed.follow(scope)
}

// selected returns the selected row, if any.
func (m *model) selected() (row, bool) {
	if m.sel < 0 || m.sel >= len(m.rows) {
		return row{}, false
	}
	return m.rows[m.sel], true
}

func (m model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	// Keys typed fast (or pasted) arrive as one message of several runes:
	// each is a key.
	if k.Type == tea.KeyRunes && len(k.Runes) > 1 && !k.Paste {
		var cmds []tea.Cmd
		var next tea.Model = m
		for _, r := range k.Runes {
			one := tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}
			if r == ' ' {
				one = tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{r}}
			}
			var cmd tea.Cmd
			next, cmd = next.(model).key(one)
			cmds = append(cmds, cmd)
		}
		return next, tea.Batch(cmds...)
	}
	if m.searching {
		switch k.Type {
		case tea.KeyEnter:
			m.searching = false
		case tea.KeyEsc:
			m.searching, m.search = false, ""
		case tea.KeyBackspace:
			if r := []rune(m.search); len(r) > 0 {
				m.search = string(r[:len(r)-1])
			}
		case tea.KeyCtrlC:
			return m, tea.Quit
		case tea.KeySpace:
			m.search += " "
		case tea.KeyRunes:
			m.search += string(k.Runes)
		}
		return m, nil
	}
	if m.help {
		m.help = false
		if k.String() != "q" && k.String() != "ctrl+c" {
			return m, nil
		}
	}
	r, ok := m.selected()
	switch k.String() {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "?":
		m.help = true
	case "up", "k":
		if m.sel > 0 {
			m.sel--
			m.followSelection()
		}
	case "down", "j":
		if m.sel < len(m.rows)-1 {
			m.sel++
			m.followSelection()
		}
	case "tab":
		// The log pane between the selected app and its instance.
		if ok && !r.none {
			if m.logScope == r.app {
				m.setScope(fmt.Sprintf("%s.%d", r.app, r.inst.Instance))
			} else {
				m.setScope(r.app)
			}
		}
	case " ", "p":
		m.paused = !m.paused
		if !m.paused {
			m.held = 0
		}
	case "/":
		m.searching, m.search = true, ""
	case "esc":
		m.search = ""
	case "r":
		if ok {
			return m.run("reload "+r.app, "/v1/apps/"+r.app+"/reload", nil)
		}
	case "R":
		if ok {
			return m.run("restart "+r.app, "/v1/apps/"+r.app+"/restart", nil)
		}
	case "i":
		if ok && !r.none {
			id := fmt.Sprintf("%s.%d", r.app, r.inst.Instance)
			return m.run("restart "+id, "/v1/instances/"+id+"/restart", nil)
		}
	case "+", "=":
		if ok {
			d := 1
			return m.run("scale "+r.app+" +1", "/v1/apps/"+r.app+"/scale", control.ScaleRequest{Delta: &d})
		}
	case "-", "_":
		if ok {
			d := -1
			return m.run("scale "+r.app+" -1", "/v1/apps/"+r.app+"/scale", control.ScaleRequest{Delta: &d})
		}
	case "s":
		if ok {
			return m.run("stop "+r.app, "/v1/apps/"+r.app+"/stop", nil)
		}
	case "S":
		if ok {
			return m.run("start "+r.app, "/v1/apps/"+r.app+"/start", nil)
		}
	}
	return m, nil
}

// followSelection moves the log pane with the selection, keeping its kind
// (app or instance).
func (m *model) followSelection() {
	r, ok := m.selected()
	if !ok {
		return
	}
	if strings.Contains(m.logScope, ".") && !r.none {
		m.setScope(fmt.Sprintf("%s.%d", r.app, r.inst.Instance))
	} else {
		m.setScope(r.app)
	}
}

// run sends a command; the status line says it is under way, then what
// the runner answered.
func (m model) run(what, path string, body any) (tea.Model, tea.Cmd) {
	if m.gone {
		m.line, m.lineErr = what+": the runner is gone", true
		return m, nil
	}
	m.busy++
	m.line, m.lineErr = what+"…", false
	return m, m.feed.post(what, path, body)
}

// notable events go to the status line.
func notable(ev control.Event) bool {
	switch ev.Kind {
	case status.Crashed, status.Restart, status.GaveUp, status.RolloutBegan, status.RolloutEnded, status.Rejected, status.Scaled:
		return true
	}
	return false
}

// describe is an event in the words of the status line.
func describe(ev control.Event) string {
	who := ev.App
	if ev.Instance >= 0 && ev.App != "" {
		who = fmt.Sprintf("%s.%d", ev.App, ev.Instance)
	}
	switch ev.Kind {
	case status.Crashed:
		return fmt.Sprintf("%s (pid %d) crashed: %s", who, ev.PID, ev.Reason)
	case status.Restart:
		return fmt.Sprintf("%s restarting (%s)", who, ev.Reason)
	case status.RolloutBegan:
		return fmt.Sprintf("%s: %s began (release %d)", who, ev.Outcome, ev.Release)
	case status.RolloutEnded:
		if ev.Detail != "" {
			return oneLine(ev.Detail)
		}
		return fmt.Sprintf("%s: %s %s", who, ev.Reason, ev.Outcome)
	case status.Rejected:
		return "reload rejected: " + firstLine(ev.Detail)
	case status.GaveUp:
		return fmt.Sprintf("%s gave up: %s", who, ev.Detail)
	case status.Scaled:
		return fmt.Sprintf("%s scaled to %d", who, ev.Count)
	case status.Started:
		return fmt.Sprintf("%s started (pid %d)", who, ev.PID)
	case status.Ready:
		return fmt.Sprintf("%s ready after %s", who, ev.ReadyAfter.Round(time.Millisecond))
	}
	s := fmt.Sprintf("%s %s", who, ev.Kind)
	if ev.Reason != "" {
		s += ": " + ev.Reason
	}
	return s
}
