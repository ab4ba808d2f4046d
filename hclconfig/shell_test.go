package hclconfig

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExecForm(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = not simple, runs as written
	}{
		// Simple: exec goes in front of the program.
		{"python3 srv.py --port $PORT", "exec python3 srv.py --port $PORT"},
		{"FOO=1 node x.js", "FOO=1 exec node x.js"},
		{`FOO=1 BAR='a b' BAZ="c $HOME" node x.js`, `FOO=1 BAR='a b' BAZ="c $HOME" exec node x.js`},
		{"  node x.js  ", "  exec node x.js  "},
		{"\tnode\tx.js", "\texec node\tx.js"},
		{`node 'a;b' "c|d" e\;f 'it''s' "q\"q"`, `exec node 'a;b' "c|d" e\;f 'it''s' "q\"q"`},
		{"bundle exec puma -p $PORT -C config/puma.rb", "exec bundle exec puma -p $PORT -C config/puma.rb"},
		{"ruby clock.rb # runs every minute; really", "exec ruby clock.rb # runs every minute; really"},
		{"node a#b", "exec node a#b"},
		{"$JAVA_HOME/bin/java -jar x.jar", "exec $JAVA_HOME/bin/java -jar x.jar"},
		{"${HOME}/bin/server ${PORT:-8080}", "exec ${HOME}/bin/server ${PORT:-8080}"},
		{"./bin/release --verbose", "exec ./bin/release --verbose"},
		{"env FOO=1 node", "exec env FOO=1 node"},
		{"'my prog' arg", "exec 'my prog' arg"},
		{"node $@ $1 $$ x$", "exec node $@ $1 $$ x$"},
		{"gunicorn app:app --bind [::]:$PORT", "exec gunicorn app:app --bind [::]:$PORT"},

		// Not simple: lists, pipes, redirections, groups, substitutions.
		{"a; b", ""},
		{"a && b", ""},
		{"a || b", ""},
		{"a | b", ""},
		{"a > log", ""},
		{"a 2>&1", ""},
		{"a < in", ""},
		{"(a)", ""},
		{"{ a; }", ""},
		{"a &", ""},
		{"a\nb", ""},
		{"a #c\nb", ""},
		{"a\\\nb", ""},
		{"echo `date`", ""},
		{"node $(cat args)", ""},
		{`node "$(cat args)"`, ""},
		{"node \"`cat args`\"", ""},
		{"node $((1+2))", ""},
		{"node $'x'", ""},
		{"node $[1+2]", ""},
		{"node ${X:-\"a\"}", ""},
		{"trap 'exit 0' TERM INT; while true; do date; sleep 2 & wait; done", ""},
		// Keywords, special builtins and shell-only builtins.
		{"if true; then x; fi", ""},
		{"exec node", ""},
		{"FOO=1 exec node", ""},
		{"cd /srv && node x.js", ""},
		{"cd /srv", ""},
		{"export A=1", ""},
		{". ./env.sh", ""},
		{"source env.sh", ""},
		{"ulimit -n 1024", ""},
		{"time node", ""},
		{"! node", ""},
		{"echo hello", ""},
		{"'cd' /tmp", ""},
		{"wait", ""},
		// No program, or one only the shell knows.
		{"", ""},
		{"   ", ""},
		{"FOO=1", ""},
		{"FOO=1 BAR=2", ""},
		{"# only a comment", ""},
		{"-x foo", ""},
		{"$CMD arg", ""},
		{`"$CMD" arg`, ""},
		{"*.sh", ""},
		{"~/bin/server", ""},
		{"a{b,c} x", ""},
		// Unbalanced quoting is the shell's error to report.
		{"'unterminated", ""},
		{`"unterminated`, ""},
		{"trailing\\", ""},
	}
	for _, tt := range tests {
		got, simple := execForm(tt.in)
		want := tt.want
		if want == "" {
			want = tt.in
		}
		if got != want || simple != (tt.want != "") {
			t.Errorf("execForm(%q) = %q, %v; want %q, %v", tt.in, got, simple, want, tt.want != "")
		}
	}
}

func TestShellCommand(t *testing.T) {
	if got, want := shellCommand("FOO=1 node x.js"), []string{"/bin/sh", "-c", "FOO=1 exec node x.js"}; !reflect.DeepEqual(got, want) {
		t.Errorf("shellCommand = %q, want %q", got, want)
	}
	if got, want := shellCommand("a | b"), []string{"/bin/sh", "-c", "a | b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("shellCommand = %q, want %q", got, want)
	}
}

// helperEnv makes the test binary print its process (printProcess)
// instead of running tests.
const helperEnv = "CLUSTERRUN_HCLCONFIG_PRINT_PROCESS"

type processInfo struct {
	Pid  int
	Args []string
	Foo  string
}

func printProcess() int {
	info := processInfo{Pid: os.Getpid(), Args: os.Args[1:], Foo: os.Getenv("FOO")}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return 1
	}
	return 7
}

// TestExecFormWithShell runs a few simple commands through the real
// /bin/sh, written as is and in exec form: the exec form must run the
// same program with the same arguments and environment, as the shell's
// own process, and exit with the program's status.
func TestExecFormWithShell(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	prog, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(prog)
	for _, tmpl := range []string{
		`PROG a 'b c' "d $HOME" e\ f '' "" x#y`,
		`FOO=1 PROG --flag`,
		`FOO="x y" BAR=$HOME PROG "$FOO" ${HOME}`,
		`  PROG  tab	sep  `,
		`./` + filepath.Base(prog) + ` relative`,
		`${BINDIR}/` + filepath.Base(prog) + ` braced # and a comment`,
	} {
		src := strings.ReplaceAll(tmpl, "PROG", shellQuote(prog))
		form, simple := execForm(src)
		if !simple {
			t.Errorf("%q is not simple", src)
			continue
		}
		asIs, _ := runShell(t, dir, src)
		execd, shellPid := runShell(t, dir, form)
		if execd.Pid != shellPid {
			t.Errorf("%q: the program ran as pid %d, not as the shell's pid %d", form, execd.Pid, shellPid)
		}
		if !reflect.DeepEqual(execd.Args, asIs.Args) || execd.Foo != asIs.Foo {
			t.Errorf("%q ran %q FOO=%q, but as written %q FOO=%q", form, execd.Args, execd.Foo, asIs.Args, asIs.Foo)
		}
	}
}

func runShell(t *testing.T, dir, command string) (processInfo, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = []string{helperEnv + "=1", "HOME=/home/tester", "PATH=/usr/bin:/bin", "BINDIR=" + dir}
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Fatalf("sh -c %q: %v (want exit status 7), output %q", command, err, out)
	}
	var info processInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("sh -c %q printed %q: %v", command, out, err)
	}
	return info, cmd.Process.Pid
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// FuzzExecForm checks execForm on any string: it never panics, a string
// that is not simple runs unchanged, and a simple one gets exactly
// "exec " put before its program, which leaves every word as it was.
func FuzzExecForm(f *testing.F) {
	for _, s := range []string{
		"python3 srv.py --port $PORT", "FOO=1 node x.js", `a 'b c' "d $e" f\ g`, "a; b",
		"${X}/bin/y ${Z:-1}", "cd x && y", "x # c", "A=1 B='2' \"c\" d", "$'x'", "a\\\nb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		form, simple := execForm(s)
		if !simple {
			if form != s {
				t.Fatalf("not simple, but changed: %q -> %q", s, form)
			}
			return
		}
		assigns, prog, _, ok := simpleCommand(s)
		if !ok {
			t.Fatalf("execForm says simple, simpleCommand does not: %q", s)
		}
		if form != s[:prog.start]+"exec "+s[prog.start:] {
			t.Fatalf("%q -> %q: exec not put before the program at %d", s, form, prog.start)
		}
		before, ok1 := shellWords(s)
		after, ok2 := shellWords(form)
		if !ok1 || !ok2 || len(after) != len(before)+1 {
			t.Fatalf("%q -> %q: words %v / %v", s, form, before, after)
		}
		n := len(assigns)
		if after[n].value != "exec" {
			t.Fatalf("%q -> %q: word %d is %q, not exec", s, form, n, after[n].value)
		}
		for i, w := range before {
			j := i
			if i >= n {
				j++
			}
			if after[j].value != w.value || after[j].expands != w.expands {
				t.Fatalf("%q -> %q: word %d changed from %q to %q", s, form, i, w.value, after[j].value)
			}
		}
		if _, again := execForm(form); again {
			t.Fatalf("%q: the exec form %q is simple again, so exec would be added twice", s, form)
		}
		if prog.value == "" && !prog.expands {
			t.Fatalf("%q: empty program", s)
		}
	})
}

// The program a command string runs, through leading assignments and
// through env, for check to look it up.
func TestProgram(t *testing.T) {
	for _, tc := range []struct{ cmd, prog string }{
		{"bundle exec puma", "bundle"},
		{"RAILS_ENV=x bin/rails server", "bin/rails"},
		{"env RAILS_ENV=x bin/rails server", "bin/rails"},
		{"/usr/bin/env A=1 B='2 3' node server.js", "node"},
		{"env PATH=/opt/bin:$PATH tool", ""}, // looked up on a PATH set on the line
		{"PATH=/opt/bin tool", ""},
		{"env -i A=1 node", ""}, // env's options change what runs
		{"env", ""},
		{"env A=1", ""},
		{"env $CMD", ""},
		{"cd sub && node x", ""},
	} {
		a := &App{Command: shellCommand(tc.cmd), Written: Written{CommandString: tc.cmd}}
		if prog, viaShell := a.Program(); prog != tc.prog || !viaShell {
			t.Errorf("Program(%q) = %q, %v; want %q", tc.cmd, prog, viaShell, tc.prog)
		}
	}
}
