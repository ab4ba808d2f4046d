package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/logmux"
)

// Status prints the running runner's apps and processes.
func Status(args []string, stdout, stderr io.Writer) int {
	fs, file := newFlags("status", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return ExitUsage
	}
	if len(rest) > 0 {
		Usagef(stderr, "status takes no arguments")
		return ExitUsage
	}
	resp, code := request(*file, control.Request{Cmd: "status"}, 30*time.Second, stderr)
	if code != ExitOK {
		return code
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(resp.Status)
		return ExitOK
	}
	printStatus(stdout, resp.Status)
	return ExitOK
}

func printStatus(w io.Writer, st *control.Status) {
	fmt.Fprintf(w, "runner pid %d, %s\n\n", st.PID, st.Config)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tINST\tPID\tSTATE\tROLE\tRESTARTS\tUPTIME\tCPU\tRSS")
	for _, a := range st.Apps {
		if len(a.Procs) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t%s\t-\t-\t-\t-\t-\n", a.Name, a.State)
		}
		for _, p := range a.Procs {
			pid, up, cpu, rss, role := "-", "-", "-", "-", p.Role
			if role == "" {
				role = "-"
			}
			if p.PID != 0 {
				pid = strconv.Itoa(p.PID)
				up = (time.Duration(p.UptimeSeconds) * time.Second).String()
			}
			if p.CPUPercent >= 0 {
				cpu = fmt.Sprintf("%.1f%%", p.CPUPercent)
			}
			if p.RSSBytes >= 0 {
				rss = fmt.Sprintf("%.1f MiB", float64(p.RSSBytes)/(1<<20))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Name, p.Instance, pid, p.State, role, p.Restarts, up, cpu, rss)
		}
	}
	tw.Flush()
}

// Control sends reload, restart, scale, stop or start.
func Control(cmd string, args []string, stdout, stderr io.Writer) int {
	fs, file := newFlags(cmd, stderr)
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the runner to finish")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return ExitUsage
	}
	req := control.Request{Cmd: cmd, Instance: -1}
	want := map[string][2]int{"reload": {0, 1}, "restart": {1, 1}, "scale": {2, 2}, "stop": {1, 1}, "start": {1, 1}}[cmd]
	if len(rest) < want[0] || len(rest) > want[1] {
		Usagef(stderr, "wrong arguments for %s", cmd)
		return ExitUsage
	}
	if len(rest) > 0 {
		req.App = rest[0]
	}
	switch cmd {
	case "restart":
		if app, n, ok := strings.Cut(req.App, "."); ok {
			i, err := strconv.Atoi(n)
			if err != nil || i < 0 {
				Usagef(stderr, "restart takes APP or APP.N, not %q", req.App)
				return ExitUsage
			}
			req.App, req.Instance = app, i
		}
	case "scale":
		req.Scale = rest[1]
	}
	resp, code := request(*file, req, *timeout, stderr)
	if resp.Message != "" {
		fmt.Fprintln(stdout, resp.Message)
	}
	return code
}

// request sends req to the runner of -f file and reports failures on
// stderr: no runner up is one line and exit 1.
func request(file string, req control.Request, timeout time.Duration, stderr io.Writer) (control.Response, int) {
	path, err := configFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return control.Response{}, ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := control.Do(ctx, path, req)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return resp, ExitFailure
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "clusterrun: %s\n", resp.Error)
		return resp, ExitFailure
	}
	return resp, ExitOK
}

// Logs attaches to the runner's live output.
func Logs(args []string, stdout, stderr io.Writer) int {
	fs, file := newFlags("logs", stderr)
	timestamps := fs.Bool("timestamps", false, "prefix every line with the time")
	logFormat := fs.String("log-format", "text", "text or json")
	colorFlag := fs.String("color", "auto", "auto, always or never")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return ExitUsage
	}
	if len(rest) > 1 {
		Usagef(stderr, "logs takes at most one app")
		return ExitUsage
	}
	app := ""
	if len(rest) == 1 {
		app = rest[0]
	}
	on, err := colorMode(*colorFlag, stdout)
	if err != nil {
		Usagef(stderr, "%v", err)
		return ExitUsage
	}
	f := &logmux.Formatter{Timestamps: *timestamps, Color: on, Width: len("clusterrun")}
	switch *logFormat {
	case "text":
	case "json":
		f.Format = logmux.JSON
	default:
		Usagef(stderr, "--log-format must be text or json")
		return ExitUsage
	}
	path, err := configFile(*file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var buf []byte
	err = control.Follow(ctx, path, app, func(l control.LogLine) error {
		rec := l.Record()
		buf = f.Append(buf[:0], &rec)
		_, err := stdout.Write(buf)
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
