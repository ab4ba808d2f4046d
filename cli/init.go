package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clusterrun/clusterrun/initconfig"
	"github.com/spf13/cobra"
)

func newInitCmd(*cobra.Command) *cobra.Command {
	var (
		from, out *string
		force     *bool
	)
	cmd := &cobra.Command{
		Use:   "init [--from Procfile|ecosystem.config.js|ecosystem.json]",
		Short: "Write a commented cluster.hcl, new or converted from a Procfile or pm2",
		Long: `Write a commented cluster.hcl: a small template (one listener, one app, the
common blocks commented out with their defaults), or, with --from, a
conversion of a Procfile (foreman, Heroku) or of a pm2 ecosystem file.

A Procfile becomes what clusterrun makes of it: one app per line, PORT as
foreman assigns it, the web line behind a proxy listener. A pm2 file keeps
its apps' scripts, interpreters, instances, cluster mode (a shared listener
on the app's PORT), env, cwd, restart and stop settings, wait_ready and
watch; a .js file is loaded with node, which must be on PATH (else convert
it to ecosystem.json). What has no equivalent is listed at the end of the
file and on stderr.

An existing file is not overwritten without --force; "-o -" writes to
stdout. The result is then checked as "clusterrun check" would, and any
problem (a program not on PATH here, say) is printed.

Exit status: 0 when written, 1 when the file cannot be read or written,
2 for a bad command line.`,
		Example: `  clusterrun init
  clusterrun init --from Procfile
  clusterrun init --from ecosystem.config.js -o deploy/cluster.hcl
  clusterrun init --from ecosystem.json -o - | less`,
		GroupID: groupOther,
		Args:    argCount(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return result(runInit(cmd.OutOrStdout(), cmd.ErrOrStderr(), *from, *out, *force))
		},
	}
	from = cmd.Flags().String("from", "", "convert `FILE`: a Procfile (any name starting with Procfile), or a pm2 ecosystem file (.js, .cjs, .mjs or .json)")
	out = cmd.Flags().StringP("output", "o", "cluster.hcl", "write to `FILE` (\"-\": stdout)")
	force = cmd.Flags().Bool("force", false, "overwrite the output file if it exists")
	return cmd
}

func runInit(stdout, stderr io.Writer, from, out string, force bool) int {
	toStdout := out == "-"
	outPath := out
	if toStdout {
		outPath = "cluster.hcl"
	}
	outAbs, err := filepath.Abs(outPath)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: cannot write %s: %v\n", out, err)
		return ExitFailure
	}
	if !toStdout && !force {
		if _, err := os.Lstat(outAbs); err == nil {
			fmt.Fprintf(stderr, "clusterrun: %s already exists: nothing was written (--force overwrites it, -o writes another file)\n", out)
			return ExitFailure
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "clusterrun: cannot write %s: %v\n", out, err)
			return ExitFailure
		}
	}

	var res initconfig.Result
	what := "a new cluster.hcl"
	switch {
	case from == "":
		res = initconfig.Template()
	default:
		fromAbs, err := filepath.Abs(from)
		if err != nil {
			fmt.Fprintf(stderr, "clusterrun: cannot read %s: %v\n", from, err)
			return ExitFailure
		}
		src := initconfig.Source{Name: filepath.Base(from), Dir: filepath.Dir(fromAbs), OutDir: filepath.Dir(outAbs)}
		switch base := strings.ToLower(filepath.Base(from)); {
		case strings.HasPrefix(filepath.Base(from), "Procfile"):
			data, err := os.ReadFile(from)
			if err != nil {
				fmt.Fprintf(stderr, "clusterrun: cannot read %s: %v\n", from, unwrapPath(err))
				return ExitFailure
			}
			if res, err = initconfig.FromProcfile(src, data); err != nil {
				fmt.Fprintf(stderr, "clusterrun: %v\n", err)
				return ExitFailure
			}
		case strings.HasSuffix(base, ".js"), strings.HasSuffix(base, ".cjs"), strings.HasSuffix(base, ".mjs"), strings.HasSuffix(base, ".json"):
			eco, err := initconfig.ReadEcosystem(from)
			if err != nil {
				fmt.Fprintf(stderr, "clusterrun: %v\n", err)
				return ExitFailure
			}
			res = initconfig.FromEcosystem(src, eco)
		default:
			fmt.Fprintf(stderr, "clusterrun: cannot convert %s: --from takes a Procfile (a name starting with Procfile) or a pm2 ecosystem file (.js, .cjs, .mjs or .json)\n", from)
			return ExitUsage
		}
		what = fmt.Sprintf("%d apps from %s", res.Apps, from)
		if res.Apps == 1 {
			what = "1 app from " + from
		}
	}

	for _, u := range res.Unmapped {
		fmt.Fprintf(stderr, "not converted: %s\n", u)
	}
	if toStdout {
		stdout.Write(res.File)
	} else {
		if err := os.MkdirAll(filepath.Dir(outAbs), 0o755); err != nil {
			fmt.Fprintf(stderr, "clusterrun: cannot write %s: %v\n", out, unwrapPath(err))
			return ExitFailure
		}
		if err := os.WriteFile(outAbs, res.File, 0o644); err != nil {
			fmt.Fprintf(stderr, "clusterrun: cannot write %s: %v\n", out, unwrapPath(err))
			return ExitFailure
		}
		fmt.Fprintf(stdout, "wrote %s: %s\n", out, what)
	}

	// What check would say of it, here: a program not on PATH, a watch
	// path or dir missing. The file is written either way; this is what to
	// fix before "up".
	checkGenerated(stderr, out, outAbs, res.File)
	return ExitOK
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
