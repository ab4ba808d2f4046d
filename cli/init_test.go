package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

func TestInitTemplate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cluster.hcl")
	code, stdout, errs := run("init", "-o", out)
	if code != ExitOK || stdout != "wrote "+out+": a new cluster.hcl\n" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, errs)
	}
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, diags := hclconfig.Parse(out, src); diags.HasErrors() {
		t.Errorf("the template does not load: %s", diags)
	}

	// An existing file is kept without --force.
	if err := os.WriteFile(out, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = run("init", "-o", out)
	if code != ExitFailure || !strings.Contains(errs, out+" already exists: nothing was written") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
	if b, _ := os.ReadFile(out); string(b) != "mine" {
		t.Errorf("init overwrote the file without --force")
	}
	if code, _, errs = run("init", "-o", out, "--force"); code != ExitOK {
		t.Errorf("--force: exit %d: %s", code, errs)
	}
}

func TestInitFromProcfile(t *testing.T) {
	dir := t.TempDir()
	procfile := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(procfile, []byte("web: /bin/sleep 1000\nworker: /bin/sleep 2000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORT", "")
	code, stdout, errs := run("init", "--from", procfile, "-o", "-")
	if code != ExitOK || !strings.Contains(stdout, `address = "0.0.0.0:5000"`) || !strings.Contains(stdout, `env     = { PORT = "5100" }`) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, errs)
	}
	if errs != "" {
		t.Errorf("stderr: %s", errs)
	}
}

func TestInitFromEcosystem(t *testing.T) {
	dir := t.TempDir()
	eco := filepath.Join(dir, "ecosystem.json")
	if err := os.WriteFile(eco, []byte(`{"apps": [{"name": "api", "script": "/bin/sleep", "args": "1000", "interpreter": "none", "instances": 2, "out_file": "api.log"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cluster.hcl")
	code, stdout, errs := run("init", "--from", eco, "-o", out)
	if code != ExitOK || stdout != "wrote "+out+": 1 app from "+eco+"\n" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, errs)
	}
	// What has no equivalent is on stderr and at the end of the file.
	const unmapped = `app "api": out_file: one stream on stdout`
	if !strings.Contains(errs, "not converted: "+unmapped) {
		t.Errorf("stderr lacks %q:\n%s", unmapped, errs)
	}
	cfg, _, diags := hclconfig.Load(out)
	if diags.HasErrors() {
		t.Fatalf("the converted file does not load: %s", diags)
	}
	if a := cfg.App("api"); a == nil || a.Instances != 2 || strings.Join(a.Command, " ") != "/bin/sleep 1000" {
		t.Errorf("converted app: %+v", a)
	}
}

func TestInitUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init", "--from", filepath.Join(dir, "notes.txt"), "-o", "-"}, ExitUsage, "--from takes a Procfile"},
		{[]string{"init", "--from", filepath.Join(dir, "Procfile"), "-o", "-"}, ExitFailure, "no such file or directory"},
		{[]string{"init", "extra"}, ExitUsage, "init takes no arguments"},
	} {
		code, _, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
