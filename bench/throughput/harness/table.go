package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Machine describes the run for a report header: what ran it, when, on
// what machine, with which tool versions, so that a table can be compared
// with one from elsewhere.
type Machine struct {
	Title string
	// Invoked is the run.sh command line; the driver's own is printed too.
	Invoked string
	// PM2 and Work give pm2's version from work's private PM2_HOME ("" for
	// none); Wrk is the wrk binary ("" for none).
	PM2, Work, Wrk string
	ClkTck         int
	Notes          []string
}

// Write prints the header.
func (m Machine) Write(w io.Writer) {
	fmt.Fprintf(w, "# %s\n\n", m.Title)
	if m.Invoked != "" {
		fmt.Fprintf(w, "invoked: %s\n", m.Invoked)
	}
	fmt.Fprintf(w, "command: %s\n", shellJoin(os.Args))
	fmt.Fprintf(w, "date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	host, _ := os.Hostname()
	fmt.Fprintf(w, "machine: %s, nproc %d, %s, %s\n", host, runtime.NumCPU(), procField("/proc/cpuinfo", "model name"), memTotal())
	fmt.Fprintf(w, "kernel:  %s\n", lastLine(nil, "uname", "-srv"))
	versions := fmt.Sprintf("go: %s; node: %s", runtime.Version(), lastLine(nil, "node", "--version"))
	if m.PM2 != "" {
		// Its own PM2_HOME even for --version: nothing may touch ~/.pm2.
		versions += "; pm2: " + lastLine([]string{"PM2_HOME=" + filepath.Join(m.Work, "pm2home")}, m.PM2, "--version")
	}
	if m.Wrk != "" {
		versions += "; wrk: " + WrkVersion(m.Wrk)
	}
	fmt.Fprintf(w, "tools:   %s\n", versions)
	fmt.Fprintf(w, "CLK_TCK: %d (the resolution of the runner CPU figures)\n", m.ClkTck)
	for _, n := range m.Notes {
		fmt.Fprintln(w, n)
	}
}

// shellJoin quotes the arguments that need it for a shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// memTotal returns MemTotal of /proc/meminfo in GiB.
func memTotal() string {
	f := strings.Fields(procField("/proc/meminfo", "MemTotal"))
	if len(f) == 0 {
		return "?"
	}
	kb, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.0f GiB RAM", kb/(1<<20))
}

// lastLine runs a command and returns the last line it printed.
func lastLine(env []string, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		return "?"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// Table is a Markdown table with aligned columns, readable as text too.
type Table struct {
	rows [][]string
}

// NewTable starts a table with a header row.
func NewTable(head ...string) *Table { return &Table{rows: [][]string{head}} }

// Row adds a row.
func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Write prints the table.
func (t *Table) Write(w io.Writer) {
	widths := make([]int, len(t.rows[0]))
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.rows[0])
	sep := make([]string, len(widths))
	for i, n := range widths {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, r := range t.rows[1:] {
		line(r)
	}
}

// MiB formats bytes as MiB.
func MiB(b float64) float64 { return b / (1 << 20) }
