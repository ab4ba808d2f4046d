package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary be what the commands start of clusterrun
// itself (the config reader that check, up and reload start, with
// configload.ChildArg), as main does: without it the reader runs this
// package's tests instead, and every load waits out configload's 30s
// bound.
func TestMain(m *testing.M) {
	if code, ok := hidden(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

func runArgs(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// writeFile writes text to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const validConfig = `app "a" {
  command = ["true"]
}
`

// noRunner gives the control commands a private runtime directory, where
// no runner is up.
func noRunner(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
}

// TestRun goes through the command line as a user types it: exit code, and
// what must appear on stdout or stderr (every want of the row must).
func TestRun(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cluster.hcl", validConfig)
	noRunner(t)
	commands := []string{"up", "check", "status", "logs", "reload", "restart", "scale", "stop", "start", "version", "completion", "help"}

	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		stdoutNone []string // must not appear on stdout
	}{
		// Help, as kubectl, docker and gh give it.
		{name: "no arguments prints the help", args: nil, code: 0, stdout: append([]string{"Usage:", "clusterrun [command]", "Run a cluster:", "Control the running cluster"}, commands...)},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Usage:", "Other commands:", "up ", "scale "}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:", "up "}},
		{name: "help up", args: []string{"help", "up"}, code: 0, stdout: []string{"clusterrun up [APP...] [flags]", "Examples:", "-m web=4,worker=2", "--formation", "--file", "SIGHUP"}},
		{name: "up --help", args: []string{"up", "--help"}, code: 0, stdout: []string{"clusterrun up [APP...] [flags]", "Examples:"}},
		{name: "up -h", args: []string{"up", "-h"}, code: 0, stdout: []string{"clusterrun up [APP...] [flags]"}},
		{name: "help ps (an alias)", args: []string{"help", "ps"}, code: 0, stdout: []string{"clusterrun status [flags]", "Aliases:", "--json"}},
		{name: "help of a negative scale", args: []string{"scale", "--help"}, code: 0, stdout: []string{"clusterrun scale web -1"}},

		// Typos: "did you mean", exit 2.
		{name: "mistyped command", args: []string{"stauts"}, code: 2, stderr: []string{`unknown command "stauts"`, "Did you mean this?", "status", "clusterrun --help"}},
		{name: "mistyped command with flags", args: []string{"relaod", "-f", cfg}, code: 2, stderr: []string{`unknown command "relaod"`, "reload"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "help on a typo", args: []string{"help", "scael"}, code: 2, stderr: []string{`no help for "scael"`, "Did you mean this?", "scale"}},

		// Unknown flags and bad flag values: exit 2, naming the flag and
		// the command's help.
		{name: "unknown long flag", args: []string{"up", "--bogus"}, code: 2, stderr: []string{"unknown flag: --bogus", "clusterrun up --help"}},
		{name: "unknown short flag", args: []string{"status", "-x"}, code: 2, stderr: []string{"unknown shorthand flag: 'x'", "clusterrun status --help"}},
		{name: "unknown flag on the root", args: []string{"--bogus"}, code: 2, stderr: []string{"unknown flag: --bogus"}},
		{name: "flag without its value", args: []string{"check", "-f"}, code: 2, stderr: []string{"flag needs an argument", "'f'"}},
		{name: "bad --log-format", args: []string{"up", "--log-format", "xml"}, code: 2, stderr: []string{`invalid argument "xml" for "--log-format"`, "text or json"}},
		{name: "bad --color", args: []string{"logs", "--color=sometimes"}, code: 2, stderr: []string{`"--color"`, "auto, always or never"}},
		{name: "bad -m", args: []string{"up", "-f", cfg, "-m", "a"}, code: 2, stderr: []string{"cannot parse formation", `"a" has no "="`}},
		{name: "bad -n", args: []string{"logs", "-f", cfg, "-n", "x"}, code: 2, stderr: []string{`invalid argument "x"`}},
		{name: "negative -n", args: []string{"logs", "-f", cfg, "-n", "-5"}, code: 2, stderr: []string{"-n must be 0 or more"}},

		// Argument counts.
		{name: "check takes no arguments", args: []string{"check", "extra"}, code: 2, stderr: []string{"check takes no arguments"}},
		{name: "restart needs an app", args: []string{"restart", "-f", cfg}, code: 2, stderr: []string{"restart needs one argument, APP or APP.N"}},
		{name: "restart APP.N", args: []string{"restart", "a.x", "-f", cfg}, code: 2, stderr: []string{`restart takes APP or APP.N, not "a.x"`}},
		{name: "scale needs a count", args: []string{"scale", "a"}, code: 2, stderr: []string{"scale needs two arguments"}},
		// Issue 17: a count that is not a number is a usage error, before
		// any runner is asked.
		{name: "scale to a word", args: []string{"scale", "a", "abc", "-f", cfg}, code: 2, stderr: []string{`scale takes N, +N or -N, not "abc"`}},
		{name: "completion needs a shell", args: []string{"completion"}, code: 2, stderr: []string{"bash, zsh or fish"}},
		{name: "completion of an unknown shell", args: []string{"completion", "tcsh"}, code: 2, stderr: []string{"bash, zsh or fish"}},

		// Negative scale counts are arguments, not flags, wherever the
		// flags are; with no runner up the request gets as far as the
		// socket, which proves the arguments were accepted.
		{name: "scale -1 then flags", args: []string{"scale", "a", "-1", "-f", cfg}, code: 1, stderr: []string{"no runner is up"}},
		{name: "scale flags then -1", args: []string{"scale", "-f", cfg, "a", "-1"}, code: 1, stderr: []string{"no runner is up"}},
		{name: "scale --file= then -10", args: []string{"scale", "--file=" + cfg, "a", "-10"}, code: 1, stderr: []string{"no runner is up"}},
		{name: "scale with --", args: []string{"scale", "-f", cfg, "--", "a", "-1"}, code: 1, stderr: []string{"no runner is up"}},
		{name: "scale +2", args: []string{"scale", "a", "+2", "--timeout", "5s", "-f", cfg}, code: 1, stderr: []string{"no runner is up"}},
		{name: "scale with a negative and an extra", args: []string{"scale", "a", "-1", "b", "-f", cfg}, code: 2, stderr: []string{"scale takes two arguments"}},

		// Flags before or after the arguments, GNU style.
		{name: "check -f", args: []string{"check", "-f", cfg}, code: 0, stdout: []string{"is valid"}},
		{name: "check --file=", args: []string{"check", "--file=" + cfg}, code: 0, stdout: []string{"is valid"}},
		{name: "flags before the command", args: []string{"-f", cfg, "check"}, code: 0, stdout: []string{"is valid"}},
		{name: "missing file", args: []string{"check", "-f", "/nonexistent/cluster.hcl"}, code: 2, stderr: []string{"/nonexistent/cluster.hcl"}},
		{name: "status --json, no runner", args: []string{"status", "--json", "-f", cfg}, code: 1, stderr: []string{"no runner is up"}},
		{name: "ps, no runner", args: []string{"ps", "-f", cfg}, code: 1, stderr: []string{"no runner is up"}},
		{name: "logs APP -n N --no-follow, no runner", args: []string{"logs", "a", "-n", "5", "--no-follow", "-f", cfg}, code: 1, stderr: []string{"no runner is up"}},
		{name: "up with an unknown app", args: []string{"up", "nope", "-f", cfg}, code: 2, stderr: []string{`no app "nope"`}},
		{name: "up -m with an unknown app", args: []string{"up", "-f", cfg, "-m", "nope=2"}, code: 2, stderr: []string{"-m nope=2", `has no app "nope"`}},
		{name: "up -m leaving nothing", args: []string{"up", "-f", cfg, "--formation", "a=0"}, code: 2, stderr: []string{"leaves no app"}},

		// Version: the module, and the commit or the honest "(devel)".
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"clusterrun ", "github.com/clusterrun/clusterrun", "commit", "go1."}, stdoutNone: []string{"clusterrun dev\n"}},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"github.com/clusterrun/clusterrun", "commit"}},
		{name: "version takes no arguments", args: []string{"version", "x"}, code: 2, stderr: []string{"version takes no arguments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runArgs(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("run(%q) = %d, want %d\nstdout: %s\nstderr: %s", tc.args, r.code, tc.code, r.stdout, r.stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("run(%q): stdout lacks %q:\n%s\nstderr: %s", tc.args, w, r.stdout, r.stderr)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("run(%q): stderr lacks %q:\n%s", tc.args, w, r.stderr)
				}
			}
			for _, w := range tc.stdoutNone {
				if strings.Contains(r.stdout, w) {
					t.Errorf("run(%q): stdout has %q:\n%s", tc.args, w, r.stdout)
				}
			}
			if tc.code == 2 && r.stdout != "" {
				t.Errorf("run(%q): a usage error wrote to stdout: %q", tc.args, r.stdout)
			}
		})
	}
}

// Every command has a description and examples in its help.
func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	for _, cmd := range []string{"up", "check", "status", "logs", "reload", "restart", "scale", "stop", "start", "version", "completion", "help"} {
		r := runArgs(t, "help", cmd)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:\n  clusterrun ") && !strings.Contains(r.stdout, "Examples:\n  source") {
			t.Errorf("help %s: exit %d, no usage or examples:\n%s%s", cmd, r.code, r.stdout, r.stderr)
		}
		// The description comes before the usage line.
		if i := strings.Index(r.stdout, "Usage:"); i < 80 {
			t.Errorf("help %s: no description before the usage:\n%s", cmd, r.stdout)
		}
	}
}

// The version line names the version the build recorded: "(devel)" for a
// build without a module version (a test binary is one), never a bare
// "dev", and a commit, or why there is none.
func TestVersionIsHonest(t *testing.T) {
	r := runArgs(t, "version")
	first, _, _ := strings.Cut(r.stdout, "\n")
	if !regexp.MustCompile(`^clusterrun (\(devel\)|v\d+\.\d+\.\d+\S*)$`).MatchString(first) {
		t.Errorf("first line %q is not \"clusterrun\" and a module version or (devel)", first)
	}
	if !regexp.MustCompile(`(?m)^  commit  ([0-9a-f]{40}|unknown: built without VCS information)`).MatchString(r.stdout) {
		t.Errorf("no commit, nor why there is none:\n%s", r.stdout)
	}
	if v := runArgs(t, "--version"); v.stdout != r.stdout {
		t.Errorf("--version printed %q, version %q", v.stdout, r.stdout)
	}
}

// The completion command writes cobra's scripts for the three shells.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o default -F __start_clusterrun clusterrun",
		"zsh":  "#compdef clusterrun",
		"fish": "complete -c clusterrun",
	} {
		r := runArgs(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, want) || r.stderr != "" {
			t.Errorf("completion %s: exit %d, stdout lacks %q (%d bytes), stderr %q", shell, r.code, want, len(r.stdout), r.stderr)
		}
	}
}

// The scripts ask the binary for completions through cobra's hidden
// __complete command: commands, flag values, and the config's app names.
func TestDynamicCompletion(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cluster.hcl", "app \"web\" {\n  command = [\"true\"]\n}\napp \"worker\" {\n  command = [\"true\"]\n}\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "sc"}, []string{"scale"}},
		{[]string{"__complete", "scale", "-f", cfg, ""}, []string{"web", "worker"}},
		{[]string{"__complete", "up", "-f", cfg, "web", ""}, []string{"worker"}},
		{[]string{"__complete", "up", "--color", ""}, []string{"auto", "always", "never"}},
		{[]string{"__complete", "completion", ""}, []string{"bash", "zsh", "fish"}},
	} {
		r := runArgs(t, tc.args...)
		for _, w := range tc.want {
			if r.code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(w)+`(\t|$)`).MatchString(r.stdout) {
				t.Errorf("%q: exit %d, no completion %q in:\n%s", tc.args, r.code, w, r.stdout)
			}
		}
	}
}

// Without -f, the file is cluster.hcl, else a Procfile, in the working
// directory or the nearest parent that has one, as git finds .git.
func TestConfigFoundInParentDirectory(t *testing.T) {
	noRunner(t)
	root := t.TempDir()
	top := writeFile(t, root, "cluster.hcl", validConfig)
	procfile := writeFile(t, root, "svc/Procfile", "clock: sleep 1000\n")
	deep := filepath.Join(root, "svc", "src", "pkg")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(root, "other", "sub")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}

	// Two levels below svc/: svc/Procfile is nearer than the cluster.hcl
	// at the top.
	t.Chdir(deep)
	if r := runArgs(t, "check"); r.code != 0 || !strings.Contains(r.stdout, procfile+" is valid (Procfile)") {
		t.Errorf("check in %s: exit %d, want %s found:\n%s%s", deep, r.code, procfile, r.stdout, r.stderr)
	}
	// The control commands talk to the runner of the file found: its
	// socket is keyed by that file's absolute path.
	if r := runArgs(t, "status"); r.code != 1 || !strings.Contains(r.stderr, "no runner is up for this file ("+procfile+")") {
		t.Errorf("status in %s: exit %d, want no runner for %s: %s", deep, r.code, procfile, r.stderr)
	}

	// In a sibling tree, the top-level cluster.hcl.
	t.Chdir(other)
	if r := runArgs(t, "check"); r.code != 0 || !strings.Contains(r.stdout, top+" is valid (cluster.hcl)") {
		t.Errorf("check in %s: exit %d, want %s found:\n%s%s", other, r.code, top, r.stdout, r.stderr)
	}

	// -f is taken as given, relative to the working directory.
	if r := runArgs(t, "check", "-f", "../../svc/Procfile"); r.code != 0 || !strings.Contains(r.stdout, procfile+" is valid") {
		t.Errorf("check -f ../../svc/Procfile: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// An invalid file found in a parent is reported, not skipped for one
	// further up.
	writeFile(t, root, "other/cluster.hcl", "app \"a\" {\n  comand = [\"true\"]\n}\n")
	if r := runArgs(t, "check"); r.code != 2 || !strings.Contains(r.stderr, filepath.Join(root, "other", "cluster.hcl")) {
		t.Errorf("check with an invalid cluster.hcl in the parent: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestPackageInitAllocatesLittle: every process of the binary (the runner,
// its guard, the config reader, each command) runs every package's init
// and keeps what it allocated: the guard and an idle runner never reach a
// garbage collection. A regexp or table this repository's packages build
// at init belongs in a sync.OnceValue instead (export's four regexps were
// 237 KB and cost the guard about 1 MiB of PSS). Allocations at init are
// deterministic, so the bound is exact; GODEBUG=inittrace=1 reports them.
func TestPackageInitAllocatesLittle(t *testing.T) {
	const most = 4 << 10 // bytes per package
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	line := regexp.MustCompile(`(?m)^init (github\.com/clusterrun/clusterrun/\S+) @.*, (\d+) bytes, (\d+) allocs$`)
	found := line.FindAllStringSubmatch(string(out), -1)
	if len(found) == 0 {
		t.Fatalf("no init of this repository's packages in the init trace:\n%s", out)
	}
	for _, m := range found {
		if n, _ := strconv.Atoi(m[2]); n > most {
			t.Errorf("%s allocates %s bytes (%s allocations) at init, more than %d: build it at first use", m[1], m[2], m[3], most)
		}
	}
}
