package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run --print writes the one-app file its flags describe, and that file
// passes check; flags run cannot take are usage errors, and a file that
// would not pass check is refused with check's words.
func TestRunPrint(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, stdout, errs := run("run", "--print", "-i", "4", "-p", "8080", "-e", "NODE_ENV=production", "--", "sh", "-c", "exec sleep 1000")
	if code != ExitOK || errs != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, errs)
	}
	for _, want := range []string{`address = ":8080"`, `instances = 4`, `command   = ["sh", "-c", "exec sleep 1000"]`, `NODE_ENV = "production"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the file lacks %s:\n%s", want, stdout)
		}
	}
	file := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(file, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run("check", "-f", file); code != ExitOK {
		t.Errorf("check of the printed file: exit %d\n%s%s", code, out, errs)
	}

	// The flags stop at the command: its own flags are its own.
	code, stdout, errs = run("run", "--print", "ls", "-i", "-p", "-1")
	if code != ExitOK || !strings.Contains(stdout, `command = ["ls", "-i", "-p", "-1"]`) {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, errs)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--print"}, ExitUsage, "run needs a command"},
		{[]string{"run", "--print", "-i", "four", "--", "true"}, ExitUsage, `-i takes a number of instances or "max", not "four"`},
		{[]string{"run", "--print", "--mode", "proxy", "--", "true"}, ExitUsage, "--mode is the mode of the listener: it needs -p"},
		{[]string{"run", "--print", "-e", "1X=y", "--", "true"}, ExitUsage, `-e takes KEY=VALUE, not "1X=y"`},
		{[]string{"run", "--print", "--ready", "tcp:/x", "--", "true"}, ExitUsage, "only http takes a path"},
		// What only hclconfig knows is said by check.
		{[]string{"run", "--print", "-p", "8080", "--mode", "proxi", "--", "true"}, ExitUsage, `The mode "proxi" is not known`},
		{[]string{"run", "--print", "-i", "5000", "--", "true"}, ExitUsage, "4096"},
		{[]string{"run", "--print", "--", "no-such-program-here"}, ExitUsage, "Program not found"},
	} {
		code, _, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
