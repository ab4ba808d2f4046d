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

// parseProcfile reads a Procfile the way foreman does: "name: command"
// lines, each one app with one instance, run through /bin/sh -c, PORT
// assigned from a base in steps of 100.
//
// Unlike foreman, the web line does not bind its port itself: the runner
// holds a proxy listener named "web" on foreman's port and gives each web
// instance a private PORT, so web reloads and scales without a failed
// request. The other lines bind what they bind, so they reload stop-first.
func parseProcfile(filename, abs string, src []byte) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	dir := filepath.Dir(abs)
	files := map[string]*hcl.File{filename: {Body: hcl.EmptyBody(), Bytes: src}}
	var diags hcl.Diagnostics

	// foreman loads .env next to the Procfile when there is one.
	envName := filepath.Join(filepath.Dir(filename), ".env")
	env, d := readDotEnv(envName, filepath.Join(dir, ".env"), files)
	diags = append(diags, d...)

	base := DefaultProcfilePort
	for _, p := range []string{env["PORT"], osEnv()["PORT"]} {
		// foreman's order: .env, then the runner's environment, then 5000.
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n <= 65535 {
			base = n
			break
		}
	}

	cfg := &Config{Path: abs, Dir: dir, Env: env, Procfile: true}
	envs := newEnvReader(dir)
	envFiles := []string{filepath.Join(dir, ".env")}
	seen := make(map[string]hcl.Range)
	for _, ln := range splitLines(filename, src) {
		text := strings.TrimRight(ln.text, " \t\r")
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		lineRange := ln.sub(len(text)-len(trimmed), len(text))

		colon := strings.IndexByte(text, ':')
		if colon < 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Malformed Procfile line",
				Detail:   `This line has no ":". Each line of a Procfile is "name: command", such as "web: bundle exec puma -p $PORT"; blank lines and lines starting with # are ignored.`,
				Subject:  lineRange.Ptr(),
			})
			continue
		}
		rawName := text[:colon]
		name := strings.TrimSpace(rawName)
		lead := len(rawName) - len(strings.TrimLeft(rawName, " \t"))
		nameRange := ln.sub(lead, lead+len(name))
		if name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Malformed Procfile line",
				Detail:   `This line has no process name before the ":". Each line of a Procfile is "name: command", such as "web: bundle exec puma -p $PORT".`,
				Subject:  lineRange.Ptr(),
			})
			continue
		}
		if !ValidName(name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid process name",
				Detail:   fmt.Sprintf(`The process name %q cannot be used. A name starts with a letter or digit and contains only letters, digits, "-" and "_", because it appears as "NAME.N" on the command line and as the prefix of every log line.`, name),
				Subject:  nameRange.Ptr(),
			})
			continue
		}
		rest := text[colon+1:]
		command := strings.TrimSpace(rest)
		cmdStart := colon + 1 + len(rest) - len(strings.TrimLeft(rest, " \t"))
		commandRange := ln.sub(cmdStart, cmdStart+len(command))
		if command == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing command",
				Detail:   fmt.Sprintf(`Process %q has no command after the ":". Each line of a Procfile is "name: command", such as "web: bundle exec puma -p $PORT".`, name),
				Subject:  lineRange.Ptr(),
			})
			continue
		}
		if strings.ContainsRune(command, 0) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid command",
				Detail:   "The command contains a NUL byte, which no program argument can hold.",
				Subject:  lineRange.Ptr(),
			})
			continue
		}
		if prev, dup := seen[name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate process %q", name),
				Detail:   fmt.Sprintf("A process named %q was already defined. Previous definition was at %s. Each line needs its own name.", name, posString(prev)),
				Subject:  nameRange.Ptr(),
			})
			continue
		}
		seen[name] = nameRange

		port := base + 100*len(cfg.Apps)
		if port > 65535 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No port left for process",
				Detail:   fmt.Sprintf("Process %q would get PORT %d, above 65535: ports are assigned from %d in steps of 100. Set PORT to a lower base.", name, port, base),
				Subject:  nameRange.Ptr(),
			})
			continue
		}
		if d, ok := envs.charge(len(env)+len(envFiles), name, nameRange); !ok {
			if d != nil {
				diags = append(diags, d)
			}
			continue
		}
		a := newApp(name, dir, env, lineRange)
		a.Command = shellCommand(command)
		a.Written.CommandString = command
		a.EnvFiles = append([]string(nil), envFiles...)
		if name == "web" {
			cfg.Listeners = append(cfg.Listeners, &Listener{
				Name:         "web",
				Network:      "tcp",
				Address:      "0.0.0.0:" + strconv.Itoa(port),
				Mode:         Proxy,
				Balance:      BalanceLeastConn,
				DefRange:     lineRange,
				AddressRange: nameRange,
			})
			a.Listeners = []string{"web"}
			a.Ready.Check = ReadyTCP
		} else {
			a.Port = port
			a.Reload.Order = OrderStopFirst
		}
		a.At.Command = commandRange
		cfg.Apps = append(cfg.Apps, a)
	}

	if len(cfg.Apps) == 0 && !diags.HasErrors() {
		start := hcl.Pos{Line: 1, Column: 1}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Empty Procfile",
			Detail:   `The Procfile defines no process, so there is nothing to run. Add a "name: command" line, such as "web: bundle exec puma -p $PORT".`,
			Subject:  &hcl.Range{Filename: filename, Start: start, End: start},
		})
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
