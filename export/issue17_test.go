package export

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExportsThatWereSilentlyWrong are issue 17's item 6 and item 8's
// export part, each on the file that showed it.
func TestExportsThatWereSilentlyWrong(t *testing.T) {
	testMachine(t)
	warned := func(warns []Warning, attr, part string) bool {
		return slices.ContainsFunc(warns, func(w Warning) bool { return w.Attr == attr && strings.Contains(w.Msg, part) })
	}
	unit := func(files []File, name string) unitFile {
		t.Helper()
		for _, f := range files {
			if f.Name == name {
				u, err := parseUnit(string(f.Data))
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
		}
		t.Fatalf("no %s", name)
		return nil
	}

	// go-http: "go" is not in systemd's search path, and the build step
	// (ready.check = "exit") must finish before web starts.
	cfg := load(t, config{path: "../examples/go-http/cluster.hcl"})
	files, warns, err := Render("systemd", cfg, Options{LookPath: testLookPath})
	if err != nil {
		t.Fatal(err)
	}
	build := unit(files, "build@.service")
	for k, v := range map[string]string{"Type": "oneshot", "RemainAfterExit": "yes", "ExecStart": "/usr/local/go/bin/go build -o bin/go-http ."} {
		if got := build.values("Service", k); !slices.Equal(got, []string{v}) {
			t.Errorf("build@.service %s=%q, want %q", k, got, v)
		}
	}
	if got := build.values("Unit", "Before"); !slices.Equal(got, []string{"build.target"}) {
		t.Errorf("build@.service Before=%q: build.target would not wait for it", got)
	}
	if after := unit(files, "web@.service").values("Unit", "After"); len(after) != 1 || !strings.Contains(after[0], "build.target") {
		t.Errorf("web@.service After=%q", after)
	}
	if !warned(warns, "command", "rendered as /usr/local/go/bin/go") {
		t.Errorf("no warning that go was resolved on this machine: %v", warns)
	}

	// Defaults are not warned about; a Kubernetes probe on a loopback
	// address could never pass.
	for _, format := range []string{"kubernetes", "nomad"} {
		_, warns, err := Render(format, cfg, Options{LookPath: testLookPath})
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(warns, func(w Warning) bool { return w.Attr == "restart.policy" && strings.Contains(w.Subject, `"web"`) }) {
			t.Errorf("%s: a warning about web's default restart.policy: %v", format, warns)
		}
	}
	dir := t.TempDir()
	lo, err := loadText(t, dir, "cluster.hcl", `listener "http" {
  address = "127.0.0.1:8080"
  mode    = "proxy"
}
app "web" {
  command   = ["/bin/sleep", "1"]
  listeners = ["http"]
  ready {
    check = "http"
    path  = "/ready"
  }
}`)
	if err != nil {
		t.Fatal(err)
	}
	files, warns, err = Render("kubernetes", lo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(files[0].Data), "readinessProbe") || !warned(warns, "listeners", "loopback") {
		t.Errorf("a probe for an app on 127.0.0.1, or no warning:\n%s\n%v", files[0].Data, warns)
	}

	// A Procfile exports as foreman runs it: web binds $PORT itself, no
	// socket on 5000 in its way.
	pf := load(t, config{path: "../examples/procfile/Procfile"})
	files, _, err = Render("systemd", pf, Options{LookPath: testLookPath})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".socket") {
			t.Errorf("%s rendered for a Procfile", f.Name)
		}
	}
	web := unit(files, "web@.service")
	if env, _ := environment(web.values("Service", "Environment"), "0"); env["PORT"] != "5000" || len(web.values("Service", "Sockets")) != 0 {
		t.Errorf("web@.service: PORT %q, Sockets=%q", env["PORT"], web.values("Service", "Sockets"))
	}

	// A release line (Heroku's release phase) is a one-shot step that the
	// other lines wait for; a web line that sets its own PORT binds it.
	pdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pdir, "Procfile"), []byte("release: ./bin/migrate\nweb: PORT=3000 ./bin/web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := load(t, config{path: filepath.Join(pdir, "Procfile")})
	files, warns, err = Render("systemd", rel, Options{LookPath: testLookPath})
	if err != nil {
		t.Fatal(err)
	}
	release := unit(files, "release@.service")
	if got := release.values("Service", "Type"); !slices.Equal(got, []string{"oneshot"}) {
		t.Errorf("release@.service Type=%q, want oneshot", got)
	}
	if after := unit(files, "web@.service").values("Unit", "After"); len(after) != 1 || !strings.Contains(after[0], "release.target") {
		t.Errorf("web@.service After=%q, want release.target", after)
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".socket") {
			t.Errorf("%s rendered for a web line that binds its own PORT", f.Name)
		}
	}
	if len(warns) > 0 {
		t.Errorf("warnings about what the Procfile does not say: %v", warns)
	}
}
