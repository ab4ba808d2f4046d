package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/export"
	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/spf13/cobra"
)

func newExportCmd(*cobra.Command) *cobra.Command {
	var (
		file, out, name, dir, image, clusterrunPath, prestop *string
		force, runner, noNotifyReload                        *bool
		watchdog, prestopDelay                               *time.Duration
		replicas                                             *int
		colors                                               *enumValue
	)
	cmd := &cobra.Command{
		Use:   "export systemd|kubernetes|nomad|procfile",
		Short: "Render the config for systemd, Kubernetes, Nomad or a Procfile",
		Long: `Render the config file for the engine a team grows into, from what the file
says rather than from this machine: "max" stays a CPU count where the target
can say so, env.X references stay references where it can expand them.

  systemd     a .socket unit per listener, a template APP@.service and an
              APP.target per app; instances are APP@0, APP@1, ...
  kubernetes  a Deployment and a Service per app, YAML
  nomad       one job, JSON (nomad job run -json)
  procfile    one "name: command" line per app

With --runner, the engine runs clusterrun itself on this file instead of
each app (systemd, kubernetes, nomad): one NAME.service (Type=notify-reload)
with a socket unit per listener, so that restarts keep the ports; one
Deployment whose pods run "clusterrun up" on the file from a ConfigMap,
probed on /readyz and /healthz at the metrics address; one Nomad task,
checked there. Every listener, rolling reload and drain works as it does on
a laptop.

Without -o the files go to stdout, each under a comment naming it (YAML
documents separated by "---"); with -o each is written into DIR, which is
created if missing, and files that exist are refused unless --force.

Everything the target cannot express is printed on stderr as a warning,
one line each, with the file and line of the app or listener: nothing is
dropped in silence.

Every value is written so that the target reads it back as the config
means it (quoted and escaped for the unit file, YAML, JSON or sh line it
goes into); a value the target cannot hold (a newline in a path for
systemd or a Procfile, say) is refused at its place in the file, and
nothing is written.

Exit status: 0 when rendered (warnings or not), 1 when a file could not be
written, 2 for a bad command line, an invalid config, or a value the
target cannot hold.`,
		Example: `  clusterrun export systemd -o deploy/systemd
  clusterrun export kubernetes --image registry.example.com/shop:1.4 | kubectl apply -f -
  clusterrun export nomad -o deploy --dir /opt/shop
  clusterrun export procfile -f deploy/cluster.hcl > Procfile
  clusterrun export systemd --runner --dir /srv/shop -o /etc/systemd/system
  clusterrun export kubernetes --runner --image registry.example.com/shop:1.4 --replicas 3`,
		GroupID: groupOther,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := argCount(1, 1, "one format: "+orList(export.Formats))(cmd, args); err != nil {
				return err
			}
			for _, f := range export.Formats {
				if args[0] == f {
					return nil
				}
			}
			return usageErrorf("unknown format %q: use %s", args[0], orList(export.Formats))
		},
		ValidArgs: export.Formats,
		RunE: func(cmd *cobra.Command, args []string) error {
			k8s := args[0] == "kubernetes"
			switch {
			case *image != "" && !k8s:
				return usageErrorf("--image is for kubernetes only")
			case *runner && args[0] == "procfile":
				return usageErrorf("--runner is for systemd, kubernetes and nomad: a Procfile runs the apps themselves")
			case (*noNotifyReload || cmd.Flags().Changed("watchdog")) && !(*runner && args[0] == "systemd"):
				return usageErrorf("--no-notify-reload and --watchdog are for systemd --runner")
			case cmd.Flags().Changed("clusterrun") && !*runner:
				return usageErrorf("--clusterrun is for --runner")
			case (cmd.Flags().Changed("prestop") || cmd.Flags().Changed("prestop-delay")) && !k8s:
				return usageErrorf("--prestop and --prestop-delay are for kubernetes")
			case cmd.Flags().Changed("replicas") && !(*runner && args[0] != "systemd"):
				return usageErrorf("--replicas is for kubernetes --runner and nomad --runner")
			case *prestop != "sleep" && *prestop != "exec":
				return usageErrorf("--prestop %q: use sleep (Kubernetes 1.30 and later) or exec (the image has a shell)", *prestop)
			case *replicas < 1:
				return usageErrorf("--replicas %d: at least 1", *replicas)
			case *prestopDelay < 0:
				return usageErrorf("--prestop-delay %s: not negative", *prestopDelay)
			}
			wd := *watchdog
			if wd == 0 {
				wd = -1 // --watchdog 0: none
			}
			opts := export.Options{Name: *name, Dir: *dir, Image: *image, Runner: *runner, Clusterrun: *clusterrunPath,
				NotifyFallback: *noNotifyReload, Watchdog: wd, PreStop: *prestop, PreStopDelay: *prestopDelay, Replicas: *replicas}
			if *prestopDelay == 0 {
				opts.PreStopDelay = -1 // no preStop
			}
			if opts.Dir != "" {
				abs, err := filepath.Abs(opts.Dir)
				if err != nil {
					return usageErrorf("--dir %s: %v", opts.Dir, err)
				}
				opts.Dir = abs
			}
			return result(runExport(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], *file, *out, *force, opts, colors.value))
		},
	}
	file = fileFlag(cmd)
	out = cmd.Flags().StringP("output", "o", "", "write one file per unit or manifest into `DIR` (default: all to stdout)")
	force = cmd.Flags().Bool("force", false, "with -o, overwrite files that exist")
	name = cmd.Flags().String("name", "", "the cluster's `NAME`: the Nomad job, the Kubernetes part-of label (default: the config file's directory name)")
	dir = cmd.Flags().String("dir", "", "the `DIR` the config file will be in on the target; paths under its directory here are moved there (default: where it is now)")
	image = cmd.Flags().String("image", "", "kubernetes: the container `IMAGE` of the Deployments (default: NAME)")
	runner = cmd.Flags().Bool("runner", false, "run clusterrun itself on the file under the engine, not each app (systemd, kubernetes, nomad)")
	clusterrunPath = cmd.Flags().String("clusterrun", "/usr/local/bin/clusterrun", "with --runner: the `PATH` of clusterrun on the target")
	noNotifyReload = cmd.Flags().Bool("no-notify-reload", false, "systemd --runner: Type=notify and ExecReload=clusterrun reload, for systemd before 253")
	watchdog = cmd.Flags().Duration("watchdog", 30*time.Second, "systemd --runner: WatchdogSec= (0: none)")
	prestop = cmd.Flags().String("prestop", "sleep", "kubernetes: how a pod waits before SIGTERM: sleep (the sleep action, Kubernetes 1.30+) or exec (sleep in the image's shell)")
	prestopDelay = cmd.Flags().Duration("prestop-delay", 5*time.Second, "kubernetes: how long a pod keeps serving after it is told to stop, before SIGTERM")
	replicas = cmd.Flags().Int("replicas", 1, "kubernetes --runner, nomad --runner: how many pods or allocations run clusterrun")
	colors = colorFlag(cmd)
	return cmd
}

// runExport renders the file for format and writes the result to stdout or
// into outDir.
func runExport(stdout, stderr io.Writer, format, file, outDir string, force bool, opts export.Options, colors string) int {
	path, err := configFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	color := colorMode(colors, stderr)
	// In this process (not configload's child): a refusal is rendered at
	// its place in the file, which needs the parsed file. Load checks
	// nothing of this machine, where the file does not run.
	cfg, hclFiles, diags := hclconfig.Load(path)
	if len(diags) > 0 {
		hclconfig.WriteDiagnostics(stderr, hclFiles, diags, termWidth(stderr), color)
	}
	if diags.HasErrors() {
		return ExitUsage
	}
	files, warns, err := export.Render(format, cfg, opts)
	for _, w := range warns {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	var refused *export.RefusedError
	if errors.As(err, &refused) {
		// Each value that cannot be written, at its place in the file.
		hclconfig.WriteDiagnostics(stderr, hclFiles, refused.Diags, termWidth(stderr), color)
		return ExitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitUsage
	}
	if outDir == "" {
		stdout.Write(export.Concat(format, files))
		return ExitOK
	}
	if err := writeFiles(outDir, files, force); err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return ExitFailure
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	fmt.Fprintf(stdout, "wrote %d files into %s: %s\n", len(files), outDir, strings.Join(names, ", "))
	return ExitOK
}

// writeFiles writes files into dir, creating it. Without force, it first
// checks that none of them exists, so that a refusal writes nothing.
func writeFiles(dir string, files []export.File, force bool) error {
	if !force {
		var exist []string
		for _, f := range files {
			p := filepath.Join(dir, f.Name)
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cannot write %s: %w", p, err)
			}
		}
		if len(exist) > 0 {
			verb := "exist"
			if len(exist) == 1 {
				verb = "exists"
			}
			return fmt.Errorf("cannot write into %s: %s already %s; nothing was written (--force overwrites)", dir, strings.Join(exist, ", "), verb)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
	}
	return nil
}
