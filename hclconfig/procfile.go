package hclconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// ProcfileLine is one process of a Procfile: "name: command".
type ProcfileLine struct {
	Name    string
	Command string
	// Line is its line number, from 1.
	Line int
	// NameRange, CommandRange and Range are where its name, its command
	// and the whole line (blanks around it left out) are.
	NameRange, CommandRange, Range hcl.Range
}

// ParseProcfile reads the lines of a Procfile as foreman does: "name:
// command", blank lines and lines starting with # skipped. Every line
// that cannot be a process is an error, at the line; so is a file with
// no process at all. It is the one reader of the format: Load and init
// both call it.
func ParseProcfile(filename string, src []byte) ([]ProcfileLine, hcl.Diagnostics) {
	var (
		lines []ProcfileLine
		diags hcl.Diagnostics
	)
	errorAt := func(r hcl.Range, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()})
	}
	seen := make(map[string]ProcfileLine)
	for _, ln := range splitLines(filename, src) {
		text := strings.TrimRight(ln.text, " \t\r")
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		lineRange := ln.sub(len(text)-len(trimmed), len(text))
		colon := strings.IndexByte(text, ':')
		if colon < 0 {
			errorAt(lineRange, "Malformed Procfile line", `This line has no ":". Each line of a Procfile is "name: command", such as "web: bundle exec puma -p $PORT"; blank lines and lines starting with # are ignored.`)
			continue
		}
		rawName := text[:colon]
		name := strings.TrimSpace(rawName)
		lead := len(rawName) - len(strings.TrimLeft(rawName, " \t"))
		nameRange := ln.sub(lead, lead+len(name))
		rest := text[colon+1:]
		command := strings.TrimSpace(rest)
		cmdStart := colon + 1 + len(rest) - len(strings.TrimLeft(rest, " \t"))
		l := ProcfileLine{Name: name, Command: command, Line: ln.start.Line, NameRange: nameRange,
			CommandRange: ln.sub(cmdStart, cmdStart+len(command)), Range: lineRange}
		switch prev, dup := seen[name]; {
		case name == "":
			errorAt(lineRange, "Malformed Procfile line", `This line has no process name before the ":". Each line of a Procfile is "name: command", such as "web: bundle exec puma -p $PORT".`)
		case !ValidName(name):
			errorAt(nameRange, "Invalid process name", fmt.Sprintf(`The process name %q cannot be an app name: a name starts with a letter or digit and contains only letters, digits, "-" and "_", because it appears as "NAME.N" on the command line and as the prefix of every log line.`, name))
		case command == "":
			errorAt(lineRange, "Missing command", fmt.Sprintf(`Process %q has no command after the ":". Each line of a Procfile is "name: command", such as "web: bundle exec puma -p $PORT".`, name))
		case strings.ContainsRune(command, 0):
			errorAt(lineRange, "Invalid command", "The command contains a NUL byte, which no program argument can hold.")
		case dup:
			errorAt(nameRange, fmt.Sprintf("Duplicate process %q", name), fmt.Sprintf("Process %q is already defined on line %d (%s). Each line needs its own name.", name, prev.Line, posString(prev.NameRange)))
		default:
			seen[name] = l
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 && !diags.HasErrors() {
		start := hcl.Pos{Line: 1, Column: 1}
		errorAt(hcl.Range{Filename: filename, Start: start, End: start}, "Empty Procfile",
			`The Procfile defines no process, so there is nothing to run. Add a "name: command" line, such as "web: bundle exec puma -p $PORT".`)
	}
	return lines, diags
}

// ProcfileBasePort is foreman's PORT for a Procfile's first line, and
// where it comes from: PORT in the .env next to the Procfile, else PORT
// in the environment (environ, as os.Environ), else 5000.
func ProcfileBasePort(dotEnv map[string]string, environ []string) (port int, from string) {
	var envPort string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			envPort = v
		}
	}
	for _, c := range []struct{ v, from string }{{dotEnv["PORT"], "PORT in .env"}, {envPort, "PORT in the environment"}} {
		if n, err := strconv.Atoi(c.v); err == nil && n > 0 && n <= 65535 {
			return n, c.from
		}
	}
	return DefaultProcfilePort, "foreman's default"
}

// ProcfilePort is foreman's PORT for the Procfile line at index i (from
// 0): the base port plus 100 for each line before it.
func ProcfilePort(base, i int) int { return base + 100*i }

// releaseLine is the name of Heroku's release phase in a Procfile.
const releaseLine = "release"

// parseProcfile makes a Config of a Procfile, as foreman runs it: one app
// per line with one instance, run through /bin/sh -c, PORT from foreman's
// base in steps of 100 (ProcfilePort).
//
// Unlike foreman, the web line does not bind its port itself: the runner
// holds a proxy listener named "web" on foreman's port and gives each web
// instance a private PORT, so web reloads and scales without a failed
// request. A web line that sets PORT itself ("web: PORT=3000 bundle exec
// puma") binds that port as under foreman, with a warning. The other lines
// bind what they bind, so they reload stop-first. A release line
// (Heroku's release phase: migrations) runs once, to completion, before
// the others start: they depend on it.
func parseProcfile(filename, abs string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	dir := filepath.Dir(abs)
	files := map[string]*hcl.File{filename: {Body: hcl.EmptyBody(), Bytes: src}}

	// foreman loads .env next to the Procfile when there is one.
	envName := filepath.Join(filepath.Dir(filename), ".env")
	env, diags := readDotEnv(envName, filepath.Join(dir, ".env"), files)
	base, _ := ProcfileBasePort(env, environ())

	lines, d := ParseProcfile(filename, src)
	diags = append(diags, d...)
	cfg := &Config{Path: abs, Dir: dir, Env: env, Procfile: true}
	envs := newEnvReader(dir)
	envFiles := []string{filepath.Join(dir, ".env")}
	hasRelease := false
	for i, l := range lines {
		port := ProcfilePort(base, i)
		if port > 65535 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No port left for process",
				Detail:   fmt.Sprintf("Process %q would get PORT %d, above 65535: ports are assigned from %d in steps of 100. Set PORT to a lower base.", l.Name, port, base),
				Subject:  l.NameRange.Ptr(),
			})
			continue
		}
		if d, ok := envs.charge(len(env)+len(envFiles), l.Name, l.NameRange); !ok {
			if d != nil {
				diags = append(diags, d)
			}
			continue
		}
		a := newApp(l.Name, dir, env, l.Range)
		a.Command = shellCommand(l.Command)
		a.Written.CommandString = l.Command
		a.EnvFiles = append([]string(nil), envFiles...)
		a.At.Command = l.CommandRange
		own, at := setsPort(l.Command)
		switch {
		case l.Name == releaseLine:
			// Run to completion, once per start and per reload: a step,
			// not a service.
			hasRelease = true
			a.Ready.Check = ReadyExit
			a.Restart.Policy = RestartNever
			a.Port = port
		case l.Name == "web" && own != 0:
			// As foreman runs it: the line binds its own port, which the
			// runner probes; without its proxy in front, a reload stops
			// the old instance first.
			a.Env["PORT"] = strconv.Itoa(own)
			a.Ready.Check = ReadyTCP
			a.Reload.Order = OrderStopFirst
			start := l.CommandRange.Start
			assign := hcl.Range{Filename: filename,
				Start: hcl.Pos{Line: start.Line, Column: start.Column + utf8.RuneCountInString(l.Command[:at[0]]), Byte: start.Byte + at[0]},
				End:   hcl.Pos{Line: start.Line, Column: start.Column + utf8.RuneCountInString(l.Command[:at[1]]), Byte: start.Byte + at[1]}}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Web line sets its own PORT",
				Detail:   fmt.Sprintf("The web line sets PORT=%d itself, so it listens on %d, as under foreman, and not behind clusterrun's proxy on %d: a reload stops it before starting the new one (a moment without web), and it cannot run more than one instance. To reload without a failed request, remove PORT=%d from the line and let the app bind $PORT; to serve on %d, set PORT=%d in .env.", own, own, port, own, own, own),
				Subject:  assign.Ptr(),
			})
		case l.Name == "web":
			cfg.Listeners = append(cfg.Listeners, &Listener{
				Name:         "web",
				Network:      "tcp",
				Address:      "0.0.0.0:" + strconv.Itoa(port),
				Mode:         Proxy,
				Balance:      BalanceLeastConn,
				DefRange:     l.Range,
				AddressRange: l.NameRange,
			})
			a.Listeners = []string{"web"}
			a.Ready.Check = ReadyTCP
		default:
			a.Port = port
			a.Reload.Order = OrderStopFirst
		}
		cfg.Apps = append(cfg.Apps, a)
	}
	if hasRelease {
		for _, a := range cfg.Apps {
			if a.Name != releaseLine {
				a.DependsOn = []string{releaseLine}
			}
		}
	}
	return cfg, files, diags
}

// readDotEnv reads the optional .env of a Procfile. Its problems point into
// the .env file itself, which is added to files so they show a snippet.
func readDotEnv(name, path string, files map[string]*hcl.File) (map[string]string, hcl.Diagnostics) {
	env, err := readEnvFile(path)
	if err == nil {
		return env, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	line := 1
	summary, detail := "Cannot read env file", fmt.Sprintf("Cannot read %s, the .env file next to the Procfile: %s.", path, unwrapPathError(err))
	var perr *envParseError
	if errors.As(err, &perr) {
		summary = "Invalid env file"
		detail = fmt.Sprintf("Cannot parse %s, the .env file next to the Procfile: %s. An env file holds KEY=value lines; blank lines and lines starting with # are ignored.", path, perr.msg)
		if perr.line > 0 {
			line = perr.line
		}
	}
	subject := hcl.Range{Filename: name, Start: hcl.Pos{Line: 1, Column: 1}, End: hcl.Pos{Line: 1, Column: 1}}
	// An unreadable file still gets an entry, so the writer prints its
	// name and line rather than "source code not available".
	data, rerr := readEnvFileBytes(path)
	if rerr != nil {
		data = []byte{}
	}
	files[name] = &hcl.File{Body: hcl.EmptyBody(), Bytes: data}
	for _, ln := range splitLines(name, data) {
		if ln.start.Line == line {
			subject = ln.sub(0, len(strings.TrimRight(ln.text, "\r")))
			break
		}
	}
	return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &subject}}
}

// line is one line of a file, with the position of its first byte.
type line struct {
	text     string
	filename string
	start    hcl.Pos
}

func splitLines(filename string, src []byte) []line {
	var lines []line
	offset := 0
	for n := 1; ; n++ {
		i := bytes.IndexByte(src[offset:], '\n')
		end := len(src)
		if i >= 0 {
			end = offset + i
		}
		lines = append(lines, line{
			text:     string(src[offset:end]),
			filename: filename,
			start:    hcl.Pos{Line: n, Column: 1, Byte: offset},
		})
		if i < 0 {
			return lines
		}
		offset = end + 1
	}
}

// sub is the range of bytes [from, to) of the line. Columns count
// characters, as hcl's do.
func (l line) sub(from, to int) hcl.Range {
	pos := func(b int) hcl.Pos {
		return hcl.Pos{
			Line:   l.start.Line,
			Column: 1 + utf8.RuneCountInString(l.text[:b]),
			Byte:   l.start.Byte + b,
		}
	}
	return hcl.Range{Filename: l.filename, Start: pos(from), End: pos(to)}
}
