package verify

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/export"
	"github.com/clusterrun/clusterrun/hclconfig"
	nomad "github.com/hashicorp/nomad/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// configs are the examples and export's testdata configs, as export's own
// golden test renders them.
func configs(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"../../examples/*/cluster.hcl", "../../examples/*/Procfile", "../testdata/*.hcl"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 5 {
		t.Fatalf("found only %q: the examples or export/testdata moved, update this test", out)
	}
	return out
}

// load loads path with the programs the examples run on PATH, or skips it
// when it names another user and this is not root.
func load(t *testing.T, path string) *hclconfig.Config {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(src, []byte("user ")) && os.Geteuid() != 0 {
		t.Skipf("%s names another user, which only root may load", path)
	}
	cfg, files, diags := hclconfig.Load(path)
	if diags.HasErrors() {
		var b strings.Builder
		hclconfig.WriteDiagnostics(&b, files, diags, 0, false)
		t.Fatalf("cannot load %s:\n%s", path, b.String())
	}
	return cfg
}

func testMachine(t *testing.T) {
	t.Helper()
	bin := t.TempDir()
	for _, prog := range []string{"go", "node", "python3", "go-http"} {
		if err := os.WriteFile(filepath.Join(bin, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", os.Getenv("PATH")+string(filepath.ListSeparator)+bin)
	t.Setenv("HOME", "/home/tester")
}

// TestKubernetesStrict decodes every rendered manifest into the official
// apps/v1 and core/v1 types, refusing unknown fields, and checks that the
// names inside a manifest agree (selector and labels, probe and Service
// ports).
func TestKubernetesStrict(t *testing.T) {
	testMachine(t)
	for _, path := range configs(t) {
		t.Run(path, func(t *testing.T) {
			cfg := load(t, path)
			files, _, err := export.Render("kubernetes", cfg, export.Options{CPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			deployments := make(map[string]*appsv1.Deployment)
			var services []*corev1.Service
			for _, f := range files {
				var meta struct{ Kind string }
				if err := yaml.Unmarshal(f.Data, &meta); err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				switch meta.Kind {
				case "Deployment":
					var d appsv1.Deployment
					if err := yaml.UnmarshalStrict(f.Data, &d); err != nil {
						t.Fatalf("%s: not a strict apps/v1 Deployment: %v\n%s", f.Name, err, f.Data)
					}
					checkDeployment(t, f.Name, &d)
					deployments[d.Name] = &d
				case "Service":
					var s corev1.Service
					if err := yaml.UnmarshalStrict(f.Data, &s); err != nil {
						t.Fatalf("%s: not a strict v1 Service: %v\n%s", f.Name, err, f.Data)
					}
					services = append(services, &s)
				default:
					t.Fatalf("%s: unexpected kind %q", f.Name, meta.Kind)
				}
			}
			if len(deployments) != len(cfg.Apps) {
				t.Errorf("%d Deployments for %d apps", len(deployments), len(cfg.Apps))
			}
			for _, s := range services {
				checkService(t, s, deployments)
			}
			// The stream printed without -o is the same documents.
			docs := strings.Split(string(export.Concat("kubernetes", files)), "---\n")
			if len(docs) != len(files)+1 || docs[0] != "" {
				t.Errorf("Concat made %d documents of %d files", len(docs)-1, len(files))
			}
		})
	}
}

func checkDeployment(t *testing.T, name string, d *appsv1.Deployment) {
	t.Helper()
	sel := d.Spec.Selector.MatchLabels
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod template's labels %v", name, k, v, d.Spec.Template.Labels)
		}
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 1 {
		t.Errorf("%s: replicas %v", name, d.Spec.Replicas)
	}
	if d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds <= d.Spec.MinReadySeconds {
		t.Errorf("%s: progressDeadlineSeconds %d is not above minReadySeconds %d, which the API refuses", name, *d.Spec.ProgressDeadlineSeconds, d.Spec.MinReadySeconds)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxSurge.IntValue() == 0 && ru.MaxUnavailable.IntValue() == 0 {
		t.Errorf("%s: maxSurge and maxUnavailable are both 0, which the API refuses", name)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	ports := make(map[string]bool)
	for _, p := range c.Ports {
		if len(p.Name) > 15 {
			t.Errorf("%s: port name %q is longer than 15", name, p.Name)
		}
		ports[p.Name] = true
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil {
			continue
		}
		var port string
		switch {
		case p.HTTPGet != nil:
			port = p.HTTPGet.Port.String()
		case p.TCPSocket != nil:
			port = p.TCPSocket.Port.String()
		}
		if port == "" || (!ports[port] && port[0] > '9') {
			t.Errorf("%s: probe port %q is not a container port %v", name, port, ports)
		}
	}
	if c.Image == "" || len(c.Command) == 0 {
		t.Errorf("%s: container without image or command: %+v", name, c)
	}
}

func checkService(t *testing.T, s *corev1.Service, deployments map[string]*appsv1.Deployment) {
	t.Helper()
	d := deployments[s.Name]
	if d == nil {
		t.Fatalf("Service %s selects no Deployment of the same name", s.Name)
	}
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service %s: selector %s=%s does not select its Deployment's pods", s.Name, k, v)
		}
	}
	names := make(map[string]bool)
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		names[p.Name] = true
	}
	for _, p := range s.Spec.Ports {
		if !names[p.TargetPort.String()] {
			t.Errorf("Service %s: targetPort %q is no container port", s.Name, p.TargetPort.String())
		}
	}
}

// TestNomadStrict decodes every rendered job into Nomad's api.Job,
// refusing unknown fields, and checks it against the config.
func TestNomadStrict(t *testing.T) {
	testMachine(t)
	for _, path := range configs(t) {
		t.Run(path, func(t *testing.T) {
			cfg := load(t, path)
			files, _, err := export.Render("nomad", cfg, export.Options{CPUs: 4})
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 {
				t.Fatalf("%d files, want one job", len(files))
			}
			var req struct{ Job *nomad.Job }
			dec := json.NewDecoder(bytes.NewReader(files[0].Data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				t.Fatalf("not a strict Nomad job: %v\n%s", err, files[0].Data)
			}
			job := req.Job
			if job == nil || job.ID == nil || *job.ID == "" {
				t.Fatalf("no job ID:\n%s", files[0].Data)
			}
			if len(job.TaskGroups) != len(cfg.Apps) {
				t.Fatalf("%d groups for %d apps", len(job.TaskGroups), len(cfg.Apps))
			}
			for i, g := range job.TaskGroups {
				a := cfg.Apps[i]
				if *g.Name != a.Name || len(g.Tasks) != 1 || g.Tasks[0].Driver != "raw_exec" {
					t.Errorf("group %d: %s with %d tasks, want app %s with one raw_exec task", i, *g.Name, len(g.Tasks), a.Name)
				}
				if g.Count == nil || *g.Count < 1 {
					t.Errorf("group %s: count %v", a.Name, g.Count)
				}
				u := g.Update
				if u == nil || u.MaxParallel == nil || *u.MaxParallel != a.Reload.Parallel {
					t.Errorf("group %s: update %+v, want max_parallel %d", a.Name, u, a.Reload.Parallel)
				}
				if u != nil && u.MinHealthyTime != nil && u.HealthyDeadline != nil && *u.MinHealthyTime >= *u.HealthyDeadline {
					t.Errorf("group %s: min_healthy_time %s is not below healthy_deadline %s, which Nomad refuses", a.Name, *u.MinHealthyTime, *u.HealthyDeadline)
				}
				labels := make(map[string]bool)
				for _, n := range g.Networks {
					for _, p := range append(n.ReservedPorts, n.DynamicPorts...) {
						labels[p.Label] = true
					}
				}
				for _, s := range g.Services {
					if !labels[s.PortLabel] {
						t.Errorf("group %s: service %s names port %q, which the group does not have", a.Name, s.Name, s.PortLabel)
					}
				}
				if r := g.Tasks[0].Resources; r != nil && r.MemoryMB != nil && r.MemoryMaxMB != nil && *r.MemoryMaxMB < *r.MemoryMB {
					t.Errorf("group %s: memory_max %d below memory %d", a.Name, *r.MemoryMaxMB, *r.MemoryMB)
				}
			}
			// Canonicalize is what the API client runs before it submits.
			job.Canonicalize()
		})
	}
}
