package top

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/clusterrun/clusterrun/logmux"
)

var (
	headStyle  = lipgloss.NewStyle().Bold(true)
	selStyle   = lipgloss.NewStyle().Reverse(true)
	dimStyle   = lipgloss.NewStyle().Faint(true)
	errStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	okStyle    = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	matchStyle = lipgloss.NewStyle().Reverse(true)
	titleStyle = lipgloss.NewStyle().Bold(true).Underline(true)
)

// column is one column of the table: its head and width; wide columns
// appear only when the terminal has room, http ones only for a runner
// with an http listener, before ROLE.
type column struct {
	head  string
	width int
	wide  bool
	http  bool
}

// At 80 columns every column but ROLE fits, CONNS included; the last
// minute of an http listener's instances (REQ/S, P50, P99) needs 101.
var columns = []column{
	{"APP", 9, false, false}, {"INST", 4, false, false}, {"PID", 7, false, false}, {"REL", 3, false, false}, {"STATE", 9, false, false},
	{"ROLE", 11, true, false}, {"RST", 3, false, false}, {"LAST EXIT", 10, false, false}, {"UP", 5, false, false}, {"CPU", 6, false, false},
	{"MEM", 8, false, false}, {"CONNS", 5, false, false}, {"REQ/S", 6, true, true}, {"P50", 6, true, true}, {"P99", 6, true, true},
}

// View draws the whole screen: exactly h lines of at most w cells, so
// that the renderer never scrolls and only changed lines are repainted.
func (m model) View() string {
	w, h := max(m.w, 20), max(m.h, 6)
	var lines []string
	add := func(s string) { lines = append(lines, ansi.Truncate(s, w, "…")) }

	// The runner's state first: the path is what a narrow terminal cuts.
	head := "clusterrun top  "
	switch {
	case m.gone:
		head += "runner gone"
	case m.st != nil:
		head += fmt.Sprintf("pid %d %s up %s", m.st.PID, m.st.Phase, age(time.Since(m.st.Started)))
	}
	head += "  " + m.target
	add(headStyle.Render(ansi.Truncate(head, w, "…")))
	if m.help {
		for _, l := range strings.Split(helpText, "\n") {
			add(l)
		}
		for len(lines) < h {
			add("")
		}
		return strings.Join(lines[:h], "\n")
	}

	cols := m.columns(w)
	// Room: header, table head, trends, log title, status, keys.
	napps := 0
	if m.st != nil {
		napps = len(m.st.Apps)
	}
	trendRows := min(napps, max((h-8)/4, 1))
	fixed := 1 + 1 + trendRows + 1 + 1 + 1
	rest := h - fixed
	tableRows := min(len(m.rows), max(rest/2, min(len(m.rows), 3)))
	if len(m.rows) == 0 {
		tableRows = 1
	}
	logRows := h - fixed - tableRows

	var hb strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&hb, "%-*s ", c.width, c.head)
	}
	add(headStyle.Render(strings.TrimRight(hb.String(), " ")))
	first := 0
	if m.sel >= tableRows {
		first = m.sel - tableRows + 1
	}
	for i := first; i < first+tableRows; i++ {
		if i >= len(m.rows) {
			if len(m.rows) == 0 {
				add(dimStyle.Render("(no status yet)"))
			} else {
				add("")
			}
			continue
		}
		line := m.rowText(m.rows[i], cols)
		if i == m.sel {
			line = selStyle.Render(ansi.Truncate(fmt.Sprintf("%-*s", w, line), w, ""))
		}
		add(line)
	}

	n := 0
	if m.st != nil {
		for _, a := range m.st.Apps {
			if n == trendRows {
				break
			}
			t := m.trends[a.Name]
			if t == nil {
				t = &trend{}
			}
			add(fmt.Sprintf("%-10s cpu %s %5.1f%%  mem %s %s  rst %s %d", cut(a.Name, 10),
				t.cpu.sparkline(10), t.cpu.last(), t.mem.sparkline(1<<20), mib(int64(t.mem.last())),
				t.restarts.sparkline(1), int(t.restarts.last())))
			n++
		}
	}
	for ; n < trendRows; n++ {
		add("")
	}

	title := "logs " + m.logScope
	switch {
	case m.searching:
		title += "  /" + m.search + "▏"
	case m.paused:
		title += fmt.Sprintf("  (paused, %d new)", m.held)
	default:
		title += "  (following)"
	}
	if m.search != "" && !m.searching {
		title += "  search: " + m.search
	}
	add(titleStyle.Render(ansi.Truncate(title, w, "…")))
	for _, l := range m.logView(logRows, w) {
		add(l)
	}

	st := m.line
	switch {
	case m.lineErr:
		st = errStyle.Render(ansi.Truncate(st, w, "…"))
	case m.busy > 0:
		st = dimStyle.Render(ansi.Truncate(st, w, "…"))
	case st != "":
		st = okStyle.Render(ansi.Truncate(st, w, "…"))
	}
	add(st)
	add(dimStyle.Render(ansi.Truncate("↑↓ select  r reload  R restart  i instance  +/- scale  s stop  S start  / search  space pause  tab app/inst  ? help  q quit", w, "…")))
	for len(lines) < h {
		add("")
	}
	return strings.Join(lines[:h], "\n")
}

// columns are the ones that fit in w: the http ones (all three or none)
// before ROLE.
func (m model) columns(w int) []column {
	total, httpWidth := 0, 0
	for _, c := range columns {
		switch {
		case !c.wide:
			total += c.width + 1
		case c.http:
			httpWidth += c.width + 1
		}
	}
	withHTTP := m.st != nil && m.st.HasHTTP() && total+httpWidth <= w
	if withHTTP {
		total += httpWidth
	}
	var out []column
	for _, c := range columns {
		switch {
		case c.http:
			if !withHTTP {
				continue
			}
		case c.wide:
			if total+c.width+1 > w {
				continue
			}
			total += c.width + 1
		}
		out = append(out, c)
	}
	return out
}

func (m model) rowText(r row, cols []column) string {
	var b strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&b, "%-*s ", c.width, cut(m.cell(r, c.head), c.width))
	}
	return strings.TrimRight(b.String(), " ")
}

func (m model) cell(r row, col string) string {
	p := r.inst
	if r.none {
		switch col {
		case "APP":
			return r.app
		case "STATE":
			return r.appState
		}
		return "-"
	}
	switch col {
	case "APP":
		return r.app
	case "INST":
		return fmt.Sprint(p.Instance)
	case "PID":
		if p.PID == 0 {
			return "-"
		}
		return fmt.Sprint(p.PID)
	case "REL":
		return fmt.Sprint(p.Release)
	case "STATE":
		if p.CrashLoop {
			return "crashloop"
		}
		return p.State
	case "ROLE":
		if p.Role == "" {
			return "-"
		}
		return p.Role
	case "RST":
		return fmt.Sprint(p.Restarts)
	case "LAST EXIT":
		e := p.LastExit
		if e == nil {
			return "-"
		}
		if e.Signal != "" {
			return strings.TrimPrefix(e.Signal, "SIG") + " " + age(time.Since(e.At))
		}
		return fmt.Sprintf("exit %d %s", e.Code, age(time.Since(e.At)))
	case "UP":
		if p.PID == 0 || p.Started.IsZero() {
			return "-"
		}
		return age(time.Since(p.Started))
	case "CPU":
		if u, ok := m.usage[p.PID]; ok && p.PID != 0 {
			return fmt.Sprintf("%.1f%%", u.cpu)
		}
		return "-"
	case "MEM":
		if u, ok := m.usage[p.PID]; ok && p.PID != 0 && u.mem >= 0 {
			return mib(u.mem)
		}
		return "-"
	case "CONNS":
		if p.Addr == "" {
			return "-"
		}
		return fmt.Sprint(p.Conns)
	case "REQ/S", "P50", "P99":
		rate, p50, p99 := p.HTTP.Columns()
		switch col {
		case "REQ/S":
			return rate
		case "P50":
			return p50
		}
		return p99
	}
	return ""
}

// logView returns the last n log lines that match the search, the
// matches highlighted; while paused, the lines as they were at the pause.
func (m model) logView(n, w int) []string {
	recs := m.logs
	if m.paused {
		recs = recs[:max(len(recs)-m.held, 0)]
	}
	var out []string
	for i := len(recs) - 1; i >= 0 && len(out) < n; i-- {
		text := logText(&recs[i])
		if m.search != "" {
			if !strings.Contains(text, m.search) {
				continue
			}
			text = strings.ReplaceAll(ansi.Truncate(text, w, "…"), m.search, matchStyle.Render(m.search))
		}
		out = append(out, text)
	}
	for len(out) < n {
		out = append(out, "")
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// logText is a record as `logs` prints it, without colors, one line.
func logText(r *logmux.Record) string {
	f := logmux.Formatter{Width: 10}
	b := f.Append(nil, r)
	return strings.Map(func(c rune) rune {
		if c < ' ' && c != '\t' {
			return -1
		}
		return c
	}, strings.TrimRight(string(b), "\n"))
}

func cut(s string, n int) string {
	if ansi.StringWidth(s) <= n {
		return s
	}
	return ansi.Truncate(s, n, "…")
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func mib(b int64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fM", float64(b)/(1<<20))
}

const helpText = `
  Keys
  ↑ ↓  j k     select an instance (the log pane follows it)
  r            rolling reload of the selected app (re-reads the file)
  R            restart every instance of the app, new one ready first
  i            restart the selected instance
  + -          scale the app by one instance
  s  S         stop the app (drain), start it again
  tab          log pane: the app, or only the selected instance
  space  p     pause or follow the log pane
  /            search the log pane (Enter keeps it, Esc clears it)
  ?            this help (any key closes it)
  q  Ctrl-C    quit

  Every command is answered on the status line by the runner.
  STATE crashloop: crashed recently and not yet up min_uptime.
  RST: restarts of the instance number. MEM: PSS of its process group.
  Trends: the last 12 seconds of each app's CPU, memory and restarts.`
