package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/runner"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/fatih/color"
)

// Up runs the apps in the foreground until they are stopped.
func Up(args []string, stdout, stderr io.Writer) int {
	// Watch signals first: a Ctrl-C while the file loads must not kill the
	// runner with instances half started.
	sigs := signals.Watch()
	defer sigs.Stop()

	fs, file := newFlags("up", stderr)
	timestamps := fs.Bool("timestamps", false, "prefix every line with the time")
	logFormat := fs.String("log-format", "text", "text or json (one object per line)")
	colorFlag := fs.String("color", "auto", "auto, always or never")
	only, err := parseArgs(fs, args)
	if err != nil {
		return ExitUsage
	}
	format := logmux.Text
	switch *logFormat {
	case "text":
	case "json":
		format = logmux.JSON
	default:
		Usagef(stderr, "--log-format must be text or json, not %q", *logFormat)
		return ExitUsage
	}
	outColor, err := colorMode(*colorFlag, stdout)
	if err != nil {
		Usagef(stderr, "%v", err)
		return ExitUsage
	}
	errColor, _ := colorMode(*colorFlag, stderr)
	// Set once, before any goroutine formats with it.
	color.NoColor = !outColor

	path, err := configFile(*file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	cfg := load(path, stderr, errColor)
	if cfg == nil {
		return ExitUsage
	}
	for _, n := range only {
		if cfg.App(n) == nil {
			fmt.Fprintf(stderr, "clusterrun: no app %q in %s\n", n, path)
			return ExitUsage
		}
	}

	ctl, err := control.Listen(path)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	defer ctl.Close()
	reaper, err := proc.NewReaper()
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	defer reaper.Close()
	rdir, err := os.MkdirTemp("", "clusterrun-")
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot create a runtime directory: %v\n", err)
		return ExitFailure
	}
	defer os.RemoveAll(rdir)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot find its own binary for the exec shim: %v\n", err)
		return ExitFailure
	}
	mux := logmux.New(logmux.Options{Out: stdout, Format: format, Timestamps: *timestamps, Color: outColor})
	r, err := runner.New(runner.Options{
		Config:     cfg,
		Load:       loader(path),
		Log:        mux,
		Signals:    sigs.Events(),
		Only:       only,
		Exe:        exe,
		RuntimeDir: rdir,
		Reaper:     reaper,
	})
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	ctl.Serve(r, mux)
	mux.Printf("clusterrun %s (pid %d) running %s", version, os.Getpid(), path)
	return r.Run()
}
