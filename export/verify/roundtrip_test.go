package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/export"
	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/initconfig"
	nomad "github.com/hashicorp/nomad/api"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// fuzzConfig puts each string where a value can be: an argument, a
// working directory, an env value, a shell command.
func fuzzConfig(dir, arg, envVal, script string) string {
	return fmt.Sprintf(`listener "http" {
  address = "0.0.0.0:8080"
  mode    = "proxy"
}
app "web" {
  command   = ["/bin/echo", %s, "x"]
  dir       = %s
  env       = { V = %s, W = "plain" }
  listeners = ["http"]
  ready {
    check = "http"
    path  = %s
  }
}
app "sh" {
  command = %s
}
`, initconfig.Quote(arg), initconfig.Quote(dir), initconfig.Quote(envVal), initconfig.Quote("/"+arg), initconfig.Quote(script))
}

func loadText(t testing.TB, dir, text string) *hclconfig.Config {
	t.Helper()
	p := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := hclconfig.Load(p)
	if diags.HasErrors() {
		t.Logf("does not load: %v", diags)
		return nil
	}
	return cfg
}

// k8sExpand is Kubernetes' expansion of $(VAR) in command, args and env
// values (kubernetes/third_party/forked/golang/expansion, as documented
// for EnvVar.value): "$$" is "$", $(NAME) is NAME's value when it is
// defined, and anything else is kept as written.
func k8sExpand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// checkKubernetes decodes the Deployments with sigs.k8s.io/yaml into the
// API types and compares each app's container, after Kubernetes'
// expansion, with the config: command, working directory, the literal env
// values, the ready probe's path.
func checkKubernetes(cfg *hclconfig.Config, files []export.File) error {
	var deps []*appsv1.Deployment // in the apps' order
	for _, f := range files {
		if !strings.HasSuffix(f.Name, "-deployment.yaml") {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(f.Data, &d); err != nil {
			return fmt.Errorf("%s: %v\n%s", f.Name, err, f.Data)
		}
		deps = append(deps, &d)
	}
	if len(deps) != len(cfg.Apps) {
		return fmt.Errorf("%d Deployments for %d apps", len(deps), len(cfg.Apps))
	}
	for i, a := range cfg.Apps {
		d := deps[i]
		c := d.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = k8sExpand(e.Value, env)
		}
		var argv []string
		for _, w := range append(slices.Clone(c.Command), c.Args...) {
			argv = append(argv, k8sExpand(w, env))
		}
		if !slices.Equal(argv, a.Command) {
			return fmt.Errorf("%s runs %q, want %q", a.Name, argv, a.Command)
		}
		// The container runtime execs these: execve cannot carry a NUL.
		for _, s := range append(append(slices.Clone(argv), c.WorkingDir), slices.Collect(maps.Values(env))...) {
			if strings.ContainsRune(s, 0) {
				return fmt.Errorf("%s: %q holds a NUL byte, which no exec can carry", a.Name, s)
			}
		}
		if a.Dir != cfg.Dir && c.WorkingDir != a.Dir {
			return fmt.Errorf("%s: workingDir %q, want %q", a.Name, c.WorkingDir, a.Dir)
		}
		for _, v := range a.Written.Env {
			if v.Literal && !clusterrunOwns(v.Name) && env[v.Name] != a.Env[v.Name] {
				return fmt.Errorf("%s: %s=%q, want %q", a.Name, v.Name, env[v.Name], a.Env[v.Name])
			}
		}
		if p := c.ReadinessProbe; a.Ready.Check == hclconfig.ReadyHTTP && (p == nil || p.HTTPGet == nil || p.HTTPGet.Path != a.Ready.Path) {
			return fmt.Errorf("%s: readiness probe %+v, want GET %q", a.Name, p, a.Ready.Path)
		}
	}
	return nil
}

// clusterrunOwns reports the variables clusterrun sets itself, over the
// app's env.
func clusterrunOwns(name string) bool {
	return name == "PORT" || name == "CLUSTERRUN_APP" || name == "CLUSTERRUN_INSTANCE"
}

// shWords has /bin/sh read a word list, as raw_exec's /bin/sh -c does.
func shWords(t testing.TB, words string) []string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "set -- "+words+"\nfor a do printf '%s\\0' \"$a\"; done").Output()
	if err != nil {
		t.Fatalf("sh cannot read %q: %v", words, err)
	}
	got := strings.Split(string(out), "\x00")
	return got[:len(got)-1]
}

// nomadInterpolation is what Nomad replaces in a task's config and env
// when it names one of its variables (NOMAD_*, the task's env, attr.*,
// meta.*, node.*).
var nomadInterpolation = regexp.MustCompile(`\$\{[a-zA-Z0-9_\-.\[\]"]+\}`)

// checkNomad decodes the job strictly into Nomad's api.Job and compares
// each task with the config: the script's directory and argv as /bin/sh
// reads them, the literal env values, and that no string holds a ${...}
// that Nomad would replace but export did not mean.
func checkNomad(t testing.TB, cfg *hclconfig.Config, files []export.File) error {
	var req struct{ Job *nomad.Job }
	dec := json.NewDecoder(bytes.NewReader(files[0].Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("not a strict Nomad job: %v\n%s", err, files[0].Data)
	}
	for i, a := range cfg.Apps {
		task := req.Job.TaskGroups[i].Tasks[0]
		args, _ := task.Config["args"].([]any)
		var words []string
		for _, w := range args {
			s, _ := w.(string)
			words = append(words, s)
		}
		if len(words) < 2 || words[0] != "-c" {
			return fmt.Errorf("%s: args %q", a.Name, words)
		}
		script := words[1]
		cd, rest, ok := strings.Cut(strings.TrimPrefix(script, "cd "), " && ")
		if !ok {
			return fmt.Errorf("%s: script %q", a.Name, script)
		}
		if got := shWords(t, cd); len(got) != 1 || got[0] != a.Dir {
			return fmt.Errorf("%s: changes to %q, want %q", a.Name, got, a.Dir)
		}
		for _, w := range words {
			for _, m := range nomadInterpolation.FindAllString(w, -1) {
				if !strings.HasPrefix(m, "${NOMAD_") {
					return fmt.Errorf("%s: %q holds %s, which Nomad would replace", a.Name, w, m)
				}
			}
		}
		if strings.HasPrefix(a.Command[0], "/bin/sh") && len(a.Command) == 3 && a.Written.CommandString != "" {
			if rest != a.Command[2] {
				return fmt.Errorf("%s: runs %q, want %q", a.Name, rest, a.Command[2])
			}
		} else if rest != `exec "$0" "$@"` || !slices.Equal(words[2:], a.Command) {
			return fmt.Errorf("%s: runs %q, want %q", a.Name, words[2:], a.Command)
		}
		for _, v := range a.Written.Env {
			if v.Literal && !clusterrunOwns(v.Name) && task.Env[v.Name] != a.Env[v.Name] {
				return fmt.Errorf("%s: %s=%q, want %q", a.Name, v.Name, task.Env[v.Name], a.Env[v.Name])
			}
		}
	}
	return nil
}

// TestYAMLLineBreaks: U+0085, U+2028 and U+2029 are line breaks to YAML,
// and a raw one in a double-quoted string read back as a space (issue 13);
// they are escaped, as is every other character YAML does not print.
func TestYAMLLineBreaks(t *testing.T) {
	cfg := loadText(t, t.TempDir(), fuzzConfig("sub", "a\u0085b\u2028c\u2029d\ufeffe\x7f\u00a0", "x\u0085y\r\nz\x1b[31m", "echo '\u0085'"))
	if cfg == nil {
		t.Fatal("the config does not load")
	}
	files, _, err := export.Render("kubernetes", cfg, export.Options{CPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkKubernetes(cfg, files); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrips renders every example and testdata config for
// Kubernetes and Nomad and reads each back.
func TestRoundTrips(t *testing.T) {
	testMachine(t)
	for _, path := range configs(t) {
		t.Run(path, func(t *testing.T) {
			cfg := load(t, path)
			files, _, err := export.Render("kubernetes", cfg, export.Options{CPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkKubernetes(cfg, files); err != nil {
				t.Error(err)
			}
			files, _, err = export.Render("nomad", cfg, export.Options{CPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkNomad(t, cfg, files); err != nil {
				t.Error(err)
			}
		})
	}
}

var seeds = [][4]string{
	{"sub", "a b", "v", "echo $PORT"},
	{"/srv/n%o", "$(HOME) $$ $ ${X} %i", "$(W) $$(W)", "exec sleep 1"},
	{"sub\nevil: x", "say \"hi\"\n", "a\u0085b", "a\nb"},
	{"é/\u2028", "\x01;'", "\t", "echo ${HOME}"},
}

// refused checks that an error is a refusal, each at a position.
func refused(t *testing.T, err error) {
	var re *export.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error %v, want a *export.RefusedError", err)
	}
	for _, d := range re.Diags {
		if d.Subject == nil || d.Subject.Start.Line < 1 {
			t.Fatalf("refusal without a position: %s", d.Detail)
		}
	}
}

// fuzzExport renders the fuzzed config for format and checks the round
// trip with check: whatever the config says, the file means exactly that,
// or export refuses at a position in the file.
func fuzzExport(f *testing.F, format string, check func(t *testing.T, cfg *hclconfig.Config, files []export.File) error) {
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	root := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, dir, arg, envVal, script string) {
		n++
		d := filepath.Join(root, strconv.Itoa(n))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(d)
		cfg := loadText(t, d, fuzzConfig(dir, arg, envVal, script))
		if cfg == nil {
			t.Log("outcome: does not load")
			return
		}
		files, _, err := export.Render(format, cfg, export.Options{CPUs: 4, Name: "job"})
		if err != nil {
			refused(t, err)
			t.Log("outcome: refused")
			return
		}
		if err := check(t, cfg, files); err != nil {
			t.Fatal(err)
		}
		t.Log("outcome: rendered and read back")
	})
}

// FuzzKubernetes: the manifests, once sigs.k8s.io/yaml and Kubernetes'
// expansion have read them.
func FuzzKubernetes(f *testing.F) {
	fuzzExport(f, "kubernetes", func(_ *testing.T, cfg *hclconfig.Config, files []export.File) error {
		return checkKubernetes(cfg, files)
	})
}

// FuzzNomad: the job, once Nomad's JSON decoder and /bin/sh have read it.
func FuzzNomad(f *testing.F) {
	fuzzExport(f, "nomad", func(t *testing.T, cfg *hclconfig.Config, files []export.File) error {
		return checkNomad(t, cfg, files)
	})
}
