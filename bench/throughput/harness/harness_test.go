package harness

import (
	"github.com/clusterrun/clusterrun/bench/loadgen"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

func TestParseWrk(t *testing.T) {
	out := `Running 3s test @ http://127.0.0.1:1/
  2 threads and 64 connections
RESULT requests=1000 duration_us=2000000 p99_us=1500 connect=0 read=2 write=0 status=10 timeout=1
PID 101 600
PID 102 390
PID 101 5
`
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 990 || r.Errors != 13 || r.Seconds != 2 || r.P99 != 1500*time.Microsecond {
		t.Errorf("got %+v", r)
	}
	if r.Rate() != 495 {
		t.Errorf("rate %v, want 495", r.Rate())
	}
	if r.PIDs[101] != 605 || r.PIDs[102] != 390 || len(r.PIDs) != 2 {
		t.Errorf("pids %v", r.PIDs)
	}
	if _, err := parseWrk([]byte("Requests/sec: 1\n")); err == nil {
		t.Error("no RESULT line: want an error")
	}
}

func TestShare(t *testing.T) {
	for _, tc := range []struct {
		pids map[int]int64
		n    int
		want float64
	}{
		{map[int]int64{1: 50, 2: 50}, 2, 1},
		{map[int]int64{1: 100}, 2, 2}, // one of two instances took everything
		{map[int]int64{1: 30, 2: 10, 3: 0, 4: 0}, 4, 3},
	} {
		if got := (Result{PIDs: tc.pids}).Share(tc.n); got != tc.want {
			t.Errorf("Share(%v, %d) = %v, want %v", tc.pids, tc.n, got, tc.want)
		}
	}
	if got := (Result{}).Share(2); !math.IsNaN(got) {
		t.Errorf("no pids: %v, want NaN", got)
	}
}

func TestPidOf(t *testing.T) {
	if got := loadgen.PidOf([]byte(`{"lang":"go","app":"hello","instance":1,"pid":4321}` + "\n")); got != 4321 {
		t.Errorf("got %d", got)
	}
	if got := loadgen.PidOf([]byte(`ok`)); got != 0 {
		t.Errorf("got %d", got)
	}
}

// TestClusterrunConfig loads every config the benchmarks generate with the
// runner's own loader, so a change of the config language shows here and
// not in the middle of a benchmark run.
func TestClusterrunConfig(t *testing.T) {
	p := &Paths{GoApp: "/bin/true", HelloJS: "/dev/null"}
	for _, app := range []string{"go", "node"} {
		a, err := p.App(app)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"shared", "reuseport", "proxy", "http"} {
			c := &Clusterrun{Mode: mode, App: a, N: 4}
			src := c.Config(8080)
			cfg, _, diags := hclconfig.Parse("cluster.hcl", []byte(src))
			if diags.HasErrors() {
				t.Fatalf("%s/%s: %s\n%s", app, mode, diags.Error(), src)
			}
			if len(cfg.Listeners) != 1 || string(cfg.Listeners[0].Mode) != mode {
				t.Errorf("%s/%s: listeners %+v", app, mode, cfg.Listeners)
			}
			if len(cfg.Apps) != 1 || cfg.Apps[0].Instances != 4 || strings.Join(cfg.Apps[0].Listeners, ",") != "http" {
				t.Errorf("%s/%s: apps %+v", app, mode, cfg.Apps)
			}
			want := hclconfig.ReadyNotify
			if mode == "proxy" || mode == "http" {
				want = hclconfig.ReadyTCP
			}
			if got := cfg.Apps[0].Ready.Check; got != want {
				t.Errorf("%s/%s: ready check %s, want %s", app, mode, got, want)
			}
		}
	}
}

// Every third-party proxy's generated config is one its own checker
// accepts (where the proxy is installed; run.sh installs them).
func TestProxyKindConfigs(t *testing.T) {
	for name, k := range ProxyKinds {
		t.Run(name, func(t *testing.T) {
			bin, err := exec.LookPath(k.Bin)
			if err != nil {
				t.Skipf("%s is not installed (apt-get install %s)", k.Bin, k.Package)
			}
			dir := t.TempDir()
			cfg := filepath.Join(dir, k.File)
			if err := os.WriteFile(cfg, []byte(k.Config(18080, []int{18081, 18082}, dir)), 0o644); err != nil {
				t.Fatal(err)
			}
			var args []string
			switch k.Bin {
			case "haproxy":
				args = []string{"-c", "-f", cfg}
			case "nginx":
				args = append([]string{"-t"}, k.Args(cfg, dir)...)
			case "caddy":
				args = []string{"validate", "--config", cfg, "--adapter", "caddyfile"}
			default:
				t.Fatalf("no checker known for %s", k.Bin)
			}
			cmd := exec.Command(bin, args...)
			if k.Env != nil {
				cmd.Env = append(os.Environ(), k.Env(dir)...)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
			}
		})
	}
}
