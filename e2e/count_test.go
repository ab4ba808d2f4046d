//go:build linux

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 12: `scale web +2` then SIGHUP with an unchanged file went back to
// the file's count (2 → 4 → SIGHUP → 2), so with a watch block every save
// undid a scale. A reload changes the count only when the file's count
// changed since the last accepted load, and status says where each count
// came from.
func TestScaleSurvivesAReloadOfTheSameCount(t *testing.T) {
	t.Parallel()
	r := startRunner(t, goWeb(2))
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	from := func() (int, string, int) {
		st := r.status()
		return st.Apps[0].Instances, st.Apps[0].InstancesFrom, len(r.servingPids("web"))
	}
	if n, src, _ := from(); n != 2 || src != "file" {
		t.Fatalf("at start: %d instances from %q", n, src)
	}
	if out, errOut, code := r.cli("scale", "web", "+2"); code != 0 {
		t.Fatalf("scale +2: exit %d, %s%s", code, out, errOut)
	}
	r.waitLine(0, `web: 4 of 4 instances ready`, 30*time.Second)

	m := r.mark()
	r.signal(syscall.SIGHUP) // the same file
	r.waitLine(m, `web: reload complete: 4 of 4 instances replaced`, 60*time.Second)
	if n, src, serving := from(); n != 4 || src != "scale" || serving != 4 {
		t.Errorf("after SIGHUP with the same file: %d instances from %q, %d serving; want 4 from scale", n, src, serving)
	}
	out, _, _ := r.cli("status")
	if !strings.Contains(out, "4 instances (count from scale)") {
		t.Errorf("status does not say where the count came from:\n%s", out)
	}

	writeConfig(t, r.dir, goWeb(3)) // the file's count changes: it wins
	m = r.mark()
	r.signal(syscall.SIGHUP)
	r.waitLine(m, `web: scaling from 4 to 3 instances \(instances = 3 in the file\)`, 30*time.Second)
	r.waitLine(m, `web: reload complete: 3 of 3 instances replaced`, 60*time.Second)
	if n, src, _ := from(); n != 3 || src != "file" {
		t.Errorf("after SIGHUP with instances = 3: %d instances from %q; want 3 from the file", n, src)
	}
}

// Issue 17: `start web` after `up -m web=0` answered `no app "web"`. The
// runner knows the app -m leaves out and starts it when asked, with the
// file's count.
func TestStartAnAppTheFormationLeftOut(t *testing.T) {
	t.Parallel()
	r := startRunner(t, goWeb(2)+`
app "worker" {
  command = ["sleep", "1000"]
  ready {
    check = "delay"
    delay = "100ms"
  }
}
`, "-m", "web=0")
	r.waitLine(0, `worker: 1 of 1 instances ready`, 30*time.Second)
	if st := r.status(); st.Apps[0].Name != "web" || st.Apps[0].State != "stopped" || len(r.servingPids("web")) != 0 {
		t.Fatalf("with -m web=0: %+v", st.Apps[0])
	}
	out, errOut, code := r.cli("start", "web")
	if code != 0 {
		t.Fatalf("start web: exit %d: %s%s", code, out, errOut)
	}
	r.waitLine(0, `web: 2 of 2 instances ready`, 30*time.Second)
	if n := len(r.servingPids("web")); n != 2 {
		t.Errorf("%d web instances after start, want the file's 2", n)
	}
	instancesAnswering(t, r.port("http"), 2)
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
