package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/clusterrun/clusterrun/configload"
	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/metrics"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/runner"
	"github.com/clusterrun/clusterrun/sdnotify"
	"github.com/clusterrun/clusterrun/sdstate"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
	"github.com/clusterrun/clusterrun/watch"
	"github.com/fatih/color"
	"github.com/spf13/cobra"
)

func newUpCmd(*cobra.Command) *cobra.Command {
	var (
		file       *string
		timestamps *bool
		logFormat  *enumValue
		colors     *enumValue
		formation  formationValue
	)
	cmd := &cobra.Command{
		Use:   "up [APP...]",
		Short: "Run the apps in the foreground until stopped",
		Long: `Run every app of the config file (or only the named ones and what they depend
on) in the foreground, N instances each, on the listening sockets the runner
binds itself, with their output as one prefixed, colored stream. It exits
when stopped: SIGTERM or SIGINT (Ctrl-C) drain every instance, a second one
kills them (one within half a second of the first is the same send, as GNU
timeout delivers it twice, and changes nothing); SIGHUP (or "clusterrun reload") re-reads the file and rolls the
apps over one instance at a time.

The file is -f, else cluster.hcl, else a Procfile, in the working directory
or the nearest parent directory that has one. -m sets instance counts for
this run, as foreman's formation does: they override the file at start and
at every reload (a "clusterrun scale" since then stays); APP=0 leaves an
app stopped until "clusterrun start APP", all=N sets every app. Apps named
on the command line start (with their dependencies); the others stay
stopped until "clusterrun start APP".

Exit status: 0 after a clean shutdown, 1 if a required app gave up or the
runner failed, 2 if the command line or the file is invalid (nothing was
started).`,
		Example: `  clusterrun up
  clusterrun up -f examples/go-http/cluster.hcl
  clusterrun up -m web=4,worker=2          # foreman's formation
  clusterrun up web                        # only web and what it depends on
  clusterrun up --log-format json | your-log-shipper
  clusterrun up --timestamps --color never > cluster.log`,
		GroupID:           groupRun,
		ValidArgsFunction: completeApps(-1),
		RunE: func(cmd *cobra.Command, only []string) error {
			return result(up(cmd.OutOrStdout(), cmd.ErrOrStderr(), *file, only, *timestamps, logFormat.value, colors.value, &formation))
		},
	}
	file = fileFlag(cmd)
	cmd.Flags().VarP(&formation, "formation", "m", `instance counts for this run: APP=N pairs separated by commas, "all=N" for every app`)
	timestamps = cmd.Flags().Bool("timestamps", false, "prefix every line with the time")
	logFormat = enumFlag(cmd, "log-format", "output format: text, or json (one object per line: time, app, instance, pid, stream, line)", "text", "json")
	colors = colorFlag(cmd)
	return cmd
}

// up runs the apps until they are stopped and returns the exit code.
func up(stdout, stderr io.Writer, file string, only []string, timestamps bool, logFormat, colors string, formation *formationValue) int {
	// Watch signals first: a Ctrl-C while the file loads must not kill the
	// runner with instances half started.
	sigs := signals.Watch()
	defer sigs.Stop()
	// What describes clusterrun's own service manager is read, and taken
	// out of the environment, before anything can start a child with it.
	mgr, mgrErr := sdnotify.FromEnv()
	activated, actErr := listeners.Activated()

	format := logmux.Text
	if logFormat == "json" {
		format = logmux.JSON
	}
	outColor := colorMode(colors, stdout)
	errColor := colorMode(colors, stderr)
	// Set once, before any goroutine formats with it.
	color.NoColor = !outColor

	path, err := configFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	// The reaper first: the file is read in a child process (package
	// configload), and the reaper must be the one waiter for every child.
	reaper, err := proc.NewReaper()
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	defer reaper.Close()
	written := load(path, stderr, configload.Options{Width: termWidth(stderr), Color: errColor, Reaper: reaper})
	if written == nil {
		return ExitUsage
	}
	for _, n := range only {
		if written.App(n) == nil {
			fmt.Fprintf(stderr, "clusterrun: no app %q in %s\n", n, path)
			return ExitUsage
		}
	}
	formed, err := formation.apply(written)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	for _, n := range only {
		if formed.App(n) == nil {
			fmt.Fprintf(stderr, "clusterrun: cannot run %s: -m %s gives it no instance\n", n, formation)
			return ExitUsage
		}
	}
	// The runner gets the file as written and the formation's counts: it
	// knows the apps -m gives no instance, so that "start APP" can start
	// them.
	cfg := written

	ctl, err := control.Listen(path)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	defer ctl.Close()
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
	mux := logmux.New(logmux.Options{Out: stdout, Format: format, Timestamps: timestamps, Color: outColor})
	ctl.SetLogf(mux.Printf)
	if c := cfg.Control; c != nil && c.Address != "" {
		bound, err := listenAPI(ctl, c)
		if err != nil {
			fmt.Fprintf(stderr, "clusterrun: %v\n", err)
			return ExitFailure
		}
		mux.Printf("control API: http://%s/v1/ (bearer token required)", bound)
	}
	if mgrErr != nil {
		mux.Printf("service manager: %v", mgrErr)
	}
	if actErr != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", actErr)
		return ExitFailure
	}
	var sup *sdstate.Reporter
	if mgr != nil {
		sup = sdstate.New(mgr, cfg, mux.Printf)
	}
	// Metrics are bound before the runner exists, so that a taken address
	// stops "up" before anything started; a scrape before the runner is
	// up says so (clusterrun_up 0).
	src := &lateSource{}
	mtr := metrics.New(src)
	mtr.SetLogf(mux.Printf)
	if cfg.Metrics != nil {
		stop, bound, err := mtr.Serve(cfg.Metrics.Address)
		if err != nil {
			fmt.Fprintf(stderr, "clusterrun: metrics: %v\n", err)
			return ExitFailure
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			stop(ctx)
		}()
		mux.Printf("metrics: http://%s/metrics", bound)
	}
	r, err := runner.New(runner.Options{
		Config:     cfg,
		Formation:  formation.counts,
		Load:       loader(path, formation, reaper),
		Log:        mux,
		Signals:    sigs.Events(),
		Only:       only,
		Exe:        exe,
		RuntimeDir: rdir,
		Reaper:     reaper,
		Activated:  activated,
		Supervisor: supervisor(sup),
	})
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	src.r.Store(r)
	r.Subscribe(mtr.Observe)
	r.Subscribe(ctl.Events().Observe)
	if sup != nil {
		r.Subscribe(sup.Observe)
	}
	w, err := startWatch(cfg, r, mux)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	if w != nil {
		defer w.Close()
	}
	ctl.Serve(r, mux)
	mux.Printf("clusterrun %s (pid %d) running %s", shortVersion(), os.Getpid(), path)
	return r.Run()
}

// supervisor is sup as a runner.Supervisor: nil when there is no service
// manager (a nil *Reporter in the interface would not be nil).
func supervisor(sup *sdstate.Reporter) runner.Supervisor {
	if sup == nil {
		return nil
	}
	return sup
}

// lateSource is the runner as a metrics source, once it exists.
type lateSource struct{ r atomic.Pointer[runner.Runner] }

func (l *lateSource) Snapshot(ctx context.Context) (status.Runner, error) {
	r := l.r.Load()
	if r == nil {
		return status.Runner{}, errors.New("the runner is starting")
	}
	return r.Snapshot(ctx)
}

// Peek is Snapshot without sampling, for health checks.
func (l *lateSource) Peek(ctx context.Context) (status.Runner, error) {
	r := l.r.Load()
	if r == nil {
		return status.Runner{}, errors.New("the runner is starting")
	}
	return r.Peek(ctx)
}

// listenAPI binds the control block's TCP address with its tokens.
func listenAPI(ctl *control.Server, c *hclconfig.Control) (string, error) {
	var t control.Tokens
	var err error
	if c.TokenFile != "" {
		if t.Full, err = control.ReadToken(c.TokenFile); err != nil {
			return "", err
		}
	}
	if c.ReadOnlyTokenFile != "" {
		if t.ReadOnly, err = control.ReadToken(c.ReadOnlyTokenFile); err != nil {
			return "", err
		}
	}
	return ctl.ListenTCP(c.Address, t)
}

// startWatch watches the paths and env files of every app with a watch
// block; a change triggers that app's rolling reload, as `clusterrun reload
// APP` would, which re-reads the file and its env files too. The watch
// blocks apply as they were at start.
func startWatch(cfg *hclconfig.Config, r *runner.Runner, mux *logmux.Mux) (*watch.Watcher, error) {
	var specs []watch.Spec
	for _, a := range cfg.Apps {
		if a.Watch != nil {
			specs = append(specs, watch.Spec{App: a.Name, Paths: a.Watch.Paths, Ignore: a.Watch.Ignore, EnvFiles: a.EnvFiles})
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	return watch.New(specs, watch.Options{
		Logf: mux.Printf,
		Reload: func(app, path string) {
			// The reload waits for its rollout; the watcher must not.
			go r.Reload(context.Background(), app)
		},
	})
}
