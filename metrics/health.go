package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/http1"
	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/status"
)

// Peeker reads the runner's status with one round trip through its loop
// and no CPU or memory sampling; *runner.Runner implements it.
type Peeker interface {
	Peek(ctx context.Context) (status.Runner, error)
}

// HealthTimeout bounds the loop's answer to a health request: a loop that
// takes longer is stuck, as far as an orchestrator is concerned.
const HealthTimeout = 2 * time.Second

// Health is the answer of /healthz and /readyz.
type Health struct {
	// Status is "ok", "not ready" or "unhealthy".
	Status string `json:"status"`
	// Reason says why it is not ok.
	Reason string `json:"reason,omitempty"`
	// Phase is the runner's: running, draining or forcing.
	Phase string `json:"phase,omitempty"`
}

// Healthz answers 200 when the runner's loop answers within HealthTimeout,
// 503 otherwise: a liveness probe.
func Healthz(src Peeker) httpserve.Handler {
	return httpserve.HandlerFunc(func(w httpserve.ResponseWriter, r *httpserve.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
		defer cancel()
		st, err := src.Peek(ctx)
		if err != nil {
			httpserve.WriteJSON(w, http1.StatusServiceUnavailable, Health{Status: "unhealthy", Reason: loopError(err)})
			return
		}
		httpserve.WriteJSON(w, http1.StatusOK, Health{Status: "ok", Phase: st.Phase})
	})
}

// Readyz answers 200 when Ready says so, else 503 with the reason: a
// readiness probe.
func Readyz(src Peeker) httpserve.Handler {
	return httpserve.HandlerFunc(func(w httpserve.ResponseWriter, r *httpserve.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
		defer cancel()
		st, err := src.Peek(ctx)
		if err != nil {
			httpserve.WriteJSON(w, http1.StatusServiceUnavailable, Health{Status: "not ready", Reason: loopError(err)})
			return
		}
		if ok, why := Ready(st); !ok {
			httpserve.WriteJSON(w, http1.StatusServiceUnavailable, Health{Status: "not ready", Reason: why, Phase: st.Phase})
			return
		}
		httpserve.WriteJSON(w, http1.StatusOK, Health{Status: "ok", Phase: st.Phase})
	})
}

func loopError(err error) string {
	if err == context.DeadlineExceeded {
		return fmt.Sprintf("the runner's loop did not answer within %s", HealthTimeout)
	}
	return "the runner did not answer: " + err.Error()
}

// Ready reports whether the runner serves what it should: it is not
// draining, and every app that should run has its instances ready. An app
// stopped by a user (or left out of `up APP...`) and a finished one-shot
// step are not waited for; an app that is starting, waiting for its
// dependencies, in a crash loop or failed is not ready. During a rolling
// reload an app is ready while it has a ready serving instance, which is
// what a reload guarantees. why names every app that is not ready.
func Ready(st status.Runner) (ok bool, why string) {
	if st.Phase != "running" {
		return false, "the runner is " + st.Phase
	}
	var not []string
	for _, a := range st.Apps {
		switch a.State {
		case "ready", "done", "stopped", "stopping", "removing":
		case "reloading", "restarting", "rolling-back":
			if !serving(a) {
				not = append(not, a.Name+" is "+a.State+" with no ready instance")
			}
		case "crashloop":
			not = append(not, a.Name+" is in a crash loop")
		default:
			not = append(not, a.Name+" is "+a.State)
		}
	}
	if len(not) > 0 {
		return false, strings.Join(not, "; ")
	}
	return true, ""
}

func serving(a status.App) bool {
	for _, p := range a.Procs {
		if p.Role == "serving" && p.State == "ready" {
			return true
		}
	}
	return false
}
