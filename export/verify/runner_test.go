package verify

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/export"
	nomad "github.com/hashicorp/nomad/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestKubernetesRunner decodes the --runner manifests strictly and checks
// them against the runner's conventions: the pod runs clusterrun up on the
// file, mounted from the ConfigMap that holds it byte for byte; /readyz
// and /healthz are probed on the metrics port; the grace period is the
// preStop delay and the longest drain.
func TestKubernetesRunner(t *testing.T) {
	cfg := load(t, "../testdata/runner.hcl")
	src, err := os.ReadFile("../testdata/runner.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, prestop := range []string{"sleep", "exec"} {
		files, _, err := export.Render("kubernetes", cfg, export.Options{Runner: true, Replicas: 3, PreStop: prestop, Dir: "/srv/shop", Image: "shop:1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 3 {
			t.Fatalf("%d files, want a ConfigMap, a Deployment and a Service", len(files))
		}
		var cm corev1.ConfigMap
		var d appsv1.Deployment
		var s corev1.Service
		for i, v := range []any{&cm, &d, &s} {
			if err := yaml.UnmarshalStrict(files[i].Data, v); err != nil {
				t.Fatalf("%s: %v\n%s", files[i].Name, err, files[i].Data)
			}
		}
		if d.Spec.Template.Annotations["clusterrun/config-sha256"] == "" {
			t.Errorf("the pod template carries no checksum of the file: a changed file would not roll the pods")
		}
		if cm.Data["runner.hcl"] != string(src) {
			t.Errorf("the ConfigMap holds\n%q\nnot the file\n%q", cm.Data["runner.hcl"], src)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if got := strings.Join(c.Command, " "); got != "/usr/local/bin/clusterrun up -f /srv/shop/runner.hcl" {
			t.Errorf("command %q", got)
		}
		if m := c.VolumeMounts; len(m) != 1 || m[0].MountPath != "/srv/shop/runner.hcl" || m[0].SubPath != "runner.hcl" || d.Spec.Template.Spec.Volumes[0].ConfigMap.Name != cm.Name {
			t.Errorf("mounts %+v, volumes %+v", m, d.Spec.Template.Spec.Volumes)
		}
		health := -1
		for _, p := range c.Ports {
			if p.Name == "health" {
				health = int(p.ContainerPort)
			}
		}
		if health != 9090 {
			t.Errorf("no health port on the metrics address's port 9090: %+v", c.Ports)
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "health" {
			t.Errorf("readiness probe %+v", p)
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "health" {
			t.Errorf("liveness probe %+v", p)
		}
		ps := c.Lifecycle.PreStop
		switch prestop {
		case "sleep":
			if ps.Sleep == nil || ps.Sleep.Seconds != 5 {
				t.Errorf("preStop %+v, want sleep 5", ps)
			}
		case "exec":
			if ps.Exec == nil || strings.Join(ps.Exec.Command, " ") != "/bin/sh -c sleep 5" {
				t.Errorf("preStop %+v, want exec sleep 5", ps)
			}
		}
		// api 15s, then web 20s (api depends on it), then migrate 10s, +
		// 5s margin + 5s preStop.
		if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 55 {
			t.Errorf("terminationGracePeriodSeconds %d, want 55", *g)
		}
		if *d.Spec.Replicas != 3 || !bytes.Contains(files[1].Data, []byte("The 3 replicas (--replicas) run 3 times that")) {
			t.Errorf("replicas %d, or the header does not say what runs per pod", *d.Spec.Replicas)
		}
		checkService(t, &s, map[string]*appsv1.Deployment{d.Name: &d})
	}
}

// TestNomadRunner decodes the --runner job strictly and checks its task
// and checks against the runner's conventions.
func TestNomadRunner(t *testing.T) {
	cfg := load(t, "../testdata/runner.hcl")
	files, _, err := export.Render("nomad", cfg, export.Options{Runner: true, Dir: "/srv/shop", Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var req struct{ Job *nomad.Job }
	dec := json.NewDecoder(bytes.NewReader(files[0].Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		t.Fatalf("not a strict Nomad job: %v\n%s", err, files[0].Data)
	}
	g := req.Job.TaskGroups[0]
	task := g.Tasks[0]
	if task.Config["command"] != "/usr/local/bin/clusterrun" || strings.Join(toStrings(task.Config["args"]), " ") != "up -f /srv/shop/runner.hcl" {
		t.Errorf("task config %v", task.Config)
	}
	if *task.KillTimeout != 50*time.Second || task.KillSignal != "SIGTERM" {
		t.Errorf("kill_timeout %s, kill_signal %s; want 50s (the longest drain, api, web, migrate: 45s, and 5s), SIGTERM", *task.KillTimeout, task.KillSignal)
	}
	paths := map[string]string{}
	for _, s := range g.Services {
		for _, c := range s.Checks {
			paths[c.Path] = s.PortLabel
		}
	}
	if paths["/readyz"] != "health" || paths["/healthz"] != "health" {
		t.Errorf("checks %v, want /readyz and /healthz on the health port", paths)
	}
	found := false
	for _, p := range g.Networks[0].ReservedPorts {
		found = found || p.Label == "health" && p.Value == 9090
	}
	if !found {
		t.Errorf("no health port 9090: %+v", g.Networks[0].ReservedPorts)
	}
	req.Job.Canonicalize()
}

// TestRunnerNeedsMetrics: without a metrics block there is nothing to
// probe, and the refusal says what to add.
func TestRunnerNeedsMetrics(t *testing.T) {
	testMachine(t)
	cfg := load(t, "../../examples/node-http/cluster.hcl")
	for _, format := range []string{"kubernetes", "nomad"} {
		_, _, err := export.Render(format, cfg, export.Options{Runner: true})
		if err == nil || !strings.Contains(err.Error(), `metrics { address = "0.0.0.0:9090" }`) {
			t.Errorf("%s --runner without metrics: %v", format, err)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
