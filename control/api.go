package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/http1"
	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/metrics"
	"github.com/clusterrun/clusterrun/runner"
	"github.com/clusterrun/clusterrun/status"
)

// Answer is the body of every answer to a command (reload, restart,
// scale, stop, start), and of every error: Error and Status are set on an
// error, with the HTTP status that fits.
type Answer struct {
	Error  string `json:"error,omitempty"`
	Status int    `json:"status,omitempty"`
	// Message says what happened, one line per app for reload and restart.
	Message string `json:"message,omitempty"`
	// Apps says, for reload and restart, what happened to each app.
	Apps []status.AppResult `json:"apps,omitempty"`
	// Instances is, for scale, the app's instance count now.
	Instances int `json:"instances,omitempty"`
}

// ScaleRequest is the body of POST /v1/apps/{app}/scale: exactly one of
// Instances (set the count) and Delta (add or remove).
type ScaleRequest struct {
	Instances *int `json:"instances,omitempty"`
	Delta     *int `json:"delta,omitempty"`
}

// maxBody bounds a request body; the largest real one is a scale request
// of a few bytes.
const maxBody = 64 << 10

// writeTimeout bounds one write to a client: a follower that stops
// reading is dropped after it, and never holds the runner.
const writeTimeout = 10 * time.Second

// keepAlive is how often a quiet stream sends a comment, so that a client
// that went away is noticed and proxies keep the stream open. (A variable
// for tests.)
var keepAlive = 15 * time.Second

type api struct {
	r   Runner
	mux *logmux.Mux
	s   *Server
}

// route is one endpoint; Routes lists them for docs/api.md's test.
type route struct {
	method, path string
	h            func(*api, httpserve.ResponseWriter, *httpserve.Request)
}

var routes = []route{
	{"GET", "/v1/status", (*api).status},
	{"GET", "/v1/apps/{app}", (*api).app},
	{"POST", "/v1/reload", (*api).reloadAll},
	{"POST", "/v1/apps/{app}/reload", (*api).reload},
	{"POST", "/v1/apps/{app}/restart", (*api).restart},
	{"POST", "/v1/apps/{app}/stop", (*api).stop},
	{"POST", "/v1/apps/{app}/start", (*api).start},
	{"POST", "/v1/apps/{app}/scale", (*api).scale},
	{"POST", "/v1/instances/{instance}/restart", (*api).restartInstance},
	{"GET", "/v1/logs", (*api).logs},
	{"GET", "/v1/events", (*api).events},
}

// healthRoutes need no token on TCP: probes carry none, and they tell
// nothing but "up" and which apps are not ready.
var healthRoutes = []string{"/healthz", "/readyz"}

// Routes returns every endpoint as "METHOD /path".
func Routes() []string {
	var out []string
	for _, rt := range routes {
		out = append(out, rt.method+" "+rt.path)
	}
	for _, p := range healthRoutes {
		out = append(out, "GET "+p)
	}
	return out
}

func (a *api) router(tcp bool) httpserve.Handler {
	mux := &httpserve.Mux{NotFound: a.notFound}
	for _, rt := range routes {
		h := rt.h
		mux.HandleFunc(rt.method+" "+rt.path, func(w httpserve.ResponseWriter, r *httpserve.Request) { h(a, w, r) })
	}
	mux.Handle("GET /healthz", metrics.Healthz(a.r))
	mux.Handle("GET /readyz", metrics.Readyz(a.r))
	return httpserve.HandlerFunc(func(w httpserve.ResponseWriter, r *httpserve.Request) {
		done, ok := a.s.track()
		if !ok {
			httpserve.WriteError(w, http1.StatusServiceUnavailable, "the runner is stopping")
			return
		}
		defer done()
		if !a.allow(w, r, tcp) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// allow checks who asks: the peer's uid on the unix socket, the token on
// TCP. A refusal is answered and logged once per burst.
func (a *api) allow(w httpserve.ResponseWriter, r *httpserve.Request, tcp bool) bool {
	p, known := r.Context().Value(peerKey{}).(peer)
	if !known && !tcp {
		// A connection whose credentials were not read: its zero uid
		// would pass for root's.
		p.err = errors.New("no credentials were read for this connection")
	}
	var code int
	var err error
	switch {
	case tcp && (r.Path == "/healthz" || r.Path == "/readyz"):
		return true
	case tcp:
		code, err = a.s.tokens.authorize(r.Method, r.Header.Get("Authorization"))
	case p.err != nil:
		code, err = http1.StatusForbidden, fmt.Errorf("permission denied: cannot identify the peer: %v", p.err)
	case !a.s.allowed(p.uid):
		code, err = http1.StatusForbidden, fmt.Errorf("permission denied: uid %d does not own this runner", p.uid)
	}
	if err == nil {
		return true
	}
	a.s.refused.Note("control: refused %s %s from %s: %v", r.Method, r.Path, remote(r, p), err)
	if code == http1.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clusterrun"`)
	}
	httpserve.WriteError(w, code, err.Error())
	return false
}

func remote(r *httpserve.Request, p peer) string {
	switch {
	case p.tcp:
		return r.RemoteAddr
	case p.err != nil:
		return "an unknown uid"
	}
	return "uid " + strconv.Itoa(p.uid)
}

// notFound answers a path or method no route has, as JSON: 405 with the
// allowed methods when the path exists, else 404.
func (a *api) notFound(w httpserve.ResponseWriter, r *httpserve.Request, methods []string) {
	var allow []string
	for _, m := range []string{"GET", "POST"} {
		if slices.Contains(methods, m) {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		httpserve.WriteError(w, http1.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.Path, strings.Join(allow, " or ")))
		return
	}
	httpserve.WriteError(w, http1.StatusNotFound, fmt.Sprintf("no endpoint %s; see docs/api.md", r.Path))
}

// fail answers err from the runner with the status that fits.
func fail(w httpserve.ResponseWriter, err error) {
	httpserve.WriteJSON(w, errStatus(err), Answer{Error: err.Error(), Status: errStatus(err)})
}

func errStatus(err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return http1.StatusGatewayTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, runner.ErrStopped):
		return http1.StatusServiceUnavailable
	}
	// The request was understood; the runner's state refuses it ("web is
	// not running", "at most 4096 instances").
	return http1.StatusConflict
}

func (a *api) status(w httpserve.ResponseWriter, r *httpserve.Request) {
	get := a.r.Snapshot
	switch s := r.Query().Get("sample"); s {
	case "", "true":
	case "false":
		// The runner's model only, without the 200ms CPU sample: for a
		// client that reads it after every event.
		get = a.r.Peek
	default:
		httpserve.WriteError(w, http1.StatusBadRequest, fmt.Sprintf("sample must be true or false, not %q", s))
		return
	}
	st, err := get(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	httpserve.WriteJSON(w, http1.StatusOK, st)
}

// lookup finds app in the runner's status, or answers 404 with the name
// the client probably meant.
func (a *api) lookup(w httpserve.ResponseWriter, ctx context.Context, name string) (*status.App, *status.Runner, bool) {
	st, err := a.r.Peek(ctx)
	if err != nil {
		fail(w, err)
		return nil, nil, false
	}
	for i := range st.Apps {
		if st.Apps[i].Name == name {
			return &st.Apps[i], &st, true
		}
	}
	httpserve.WriteError(w, http1.StatusNotFound, NoApp(name, st))
	return nil, &st, false
}

// NoApp says that name is not an app of st, and which one it may be.
func NoApp(name string, st status.Runner) string {
	var names []string
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	msg := fmt.Sprintf("no app %q in %s.", name, st.Config)
	if dym := hclconfig.DidYouMean(name, names...); dym != "" {
		return msg + dym
	}
	if len(names) > 0 {
		msg += " Its apps: " + strings.Join(names, ", ") + "."
	}
	return msg
}

func (a *api) app(w httpserve.ResponseWriter, r *httpserve.Request) {
	name := r.PathValue("app")
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	// The full snapshot, for CPU and memory.
	st, err := a.r.Snapshot(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	for _, app := range st.Apps {
		if app.Name == name {
			httpserve.WriteJSON(w, http1.StatusOK, app)
			return
		}
	}
	httpserve.WriteError(w, http1.StatusNotFound, NoApp(name, st))
}

func (a *api) rollout(w httpserve.ResponseWriter, res status.ReloadResult, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	if res.Err != nil {
		httpserve.WriteJSON(w, http1.StatusConflict, Answer{Error: res.Err.Error(), Status: http1.StatusConflict, Message: res.Summary, Apps: res.Apps})
		return
	}
	httpserve.WriteJSON(w, http1.StatusOK, Answer{Message: res.Summary, Apps: res.Apps})
}

func (a *api) reloadAll(w httpserve.ResponseWriter, r *httpserve.Request) {
	res, err := a.r.Reload(r.Context(), "")
	a.rollout(w, res, err)
}

func (a *api) reload(w httpserve.ResponseWriter, r *httpserve.Request) {
	name := r.PathValue("app")
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	res, err := a.r.Reload(r.Context(), name)
	a.rollout(w, res, err)
}

func (a *api) restart(w httpserve.ResponseWriter, r *httpserve.Request) {
	name := r.PathValue("app")
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	res, err := a.r.Restart(r.Context(), name, -1)
	a.rollout(w, res, err)
}

func (a *api) restartInstance(w httpserve.ResponseWriter, r *httpserve.Request) {
	id := r.PathValue("instance")
	name, n, err := ParseInstance(id)
	if err != nil {
		httpserve.WriteError(w, http1.StatusBadRequest, err.Error())
		return
	}
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	res, err := a.r.Restart(r.Context(), name, n)
	a.rollout(w, res, err)
}

// ParseInstance splits "APP.N" at its last dot.
func ParseInstance(s string) (app string, n int, err error) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return "", 0, fmt.Errorf("%q is not APP.N (an app and an instance number)", s)
	}
	n, err = strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("%q is not APP.N: %q is not an instance number", s, s[i+1:])
	}
	return s[:i], n, nil
}

func (a *api) stop(w httpserve.ResponseWriter, r *httpserve.Request) {
	name := r.PathValue("app")
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	if err := a.r.StopApp(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	httpserve.WriteJSON(w, http1.StatusOK, Answer{Message: "stopping " + name})
}

func (a *api) start(w httpserve.ResponseWriter, r *httpserve.Request) {
	name := r.PathValue("app")
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	if err := a.r.StartApp(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	httpserve.WriteJSON(w, http1.StatusOK, Answer{Message: "starting " + name})
}

func (a *api) scale(w httpserve.ResponseWriter, r *httpserve.Request) {
	name := r.PathValue("app")
	var req ScaleRequest
	// The server refuses a Content-Length over maxBody before this runs,
	// and fails a read of a chunked body past it.
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	// A client that sends its body slowly is not waited for long.
	w.SetReadDeadline(time.Now().Add(writeTimeout))
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, httpserve.ErrBodyTooLarge) {
			httpserve.WriteError(w, http1.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: more than %d bytes", maxBody))
			return
		}
		httpserve.WriteError(w, http1.StatusBadRequest, `bad scale request: want {"instances": N} or {"delta": N}: `+err.Error())
		return
	}
	if dec.More() {
		httpserve.WriteError(w, http1.StatusBadRequest, "bad scale request: more than one JSON value")
		return
	}
	var spec string
	switch {
	case (req.Instances == nil) == (req.Delta == nil):
		httpserve.WriteError(w, http1.StatusBadRequest, `bad scale request: give exactly one of "instances" and "delta"`)
		return
	case req.Instances != nil:
		spec = strconv.Itoa(*req.Instances)
	case *req.Delta >= 0:
		spec = "+" + strconv.Itoa(*req.Delta)
	default:
		spec = strconv.Itoa(*req.Delta)
	}
	if _, _, ok := a.lookup(w, r.Context(), name); !ok {
		return
	}
	n, err := a.r.Scale(r.Context(), name, spec)
	if err != nil {
		fail(w, err)
		return
	}
	httpserve.WriteJSON(w, http1.StatusOK, Answer{Message: fmt.Sprintf("%s scaled to %d instances", name, n), Instances: n})
}

// follower takes a place among the open streams, or answers 503.
func (a *api) follower(w httpserve.ResponseWriter, r *httpserve.Request) (release func(), ok bool) {
	select {
	case a.s.followers <- struct{}{}:
		return func() { <-a.s.followers }, true
	default:
	}
	msg := fmt.Sprintf("too many followers: %d log and event streams are open, the most the runner serves at once; commands still work", MaxFollowers)
	a.s.refused.Note("control: refused %s %s: %s", r.Method, r.Path, msg)
	httpserve.WriteError(w, http1.StatusServiceUnavailable, msg)
	return nil, false
}

// maxHistory bounds n of /v1/logs; the history holds fewer lines anyway.
const maxHistory = 1 << 20

func (a *api) logs(w httpserve.ResponseWriter, r *httpserve.Request) {
	q := r.Query()
	n, follow := 0, false
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > maxHistory {
			httpserve.WriteError(w, http1.StatusBadRequest, fmt.Sprintf("n must be a number of lines from 0 to %d, not %q", maxHistory, s))
			return
		}
		n = v
	}
	if s := q.Get("follow"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			httpserve.WriteError(w, http1.StatusBadRequest, fmt.Sprintf("follow must be true or false, not %q", s))
			return
		}
		follow = v
	}
	var filter func(*logmux.Record) bool
	if app := q.Get("app"); app != "" {
		if _, _, ok := a.lookup(w, r.Context(), app); !ok {
			return
		}
		filter = func(rec *logmux.Record) bool { return rec.App == app || rec.About == app }
	}
	if follow {
		release, ok := a.follower(w, r)
		if !ok {
			return
		}
		defer release()
	}
	history, recs, dropped, cancel := a.mux.Tail(filter, n, logBuffer(follow))
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http1.StatusOK)
	var buf []byte
	send := func(rec *logmux.Record) bool {
		buf = logmux.AppendJSON(buf[:0], rec)
		w.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := w.Write(buf)
		return err == nil
	}
	for i := range history {
		if !send(&history[i]) {
			return
		}
	}
	if !follow || w.Flush() != nil {
		return
	}
	// An empty line keeps a quiet log stream alive: JSON-lines readers
	// skip it.
	stream(r.Context(), w, recs, dropped, []byte("\n"), func(rec logmux.Record) bool { return send(&rec) },
		func(n uint64) bool {
			note := logmux.Record{Time: time.Now(), App: "clusterrun", Instance: -1, Stream: logmux.Runner,
				Line: fmt.Appendf(nil, "logs: %d lines dropped because this client did not keep up", n)}
			return send(&note)
		})
}

// stream writes what arrives on items to a follower until ctx ends, the
// channel closes or a write fails: each item with send, a note with lost
// before an item when the follower fell behind (lost is how many items it
// missed since the last note), and keepAlive when the stream was quiet
// for a while (a write is how a client that vanished is noticed). It
// flushes once the items already waiting are written.
func stream[T any](ctx context.Context, w httpserve.ResponseWriter, items <-chan T, dropped func() uint64, keepAliveMsg []byte,
	send func(T) bool, lost func(n uint64) bool) {
	var noted uint64
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := w.Write(keepAliveMsg); err != nil || w.Flush() != nil {
				return
			}
		case it, ok := <-items:
			if !ok {
				return
			}
			if d := dropped(); d > noted {
				if !lost(d - noted) {
					return
				}
				noted = d
			}
			if !send(it) || len(items) == 0 && w.Flush() != nil {
				return
			}
		}
	}
}

// logBuffer is how many records a follower may fall behind by before it
// loses lines; the runner itself never waits for a client.
func logBuffer(follow bool) int {
	if follow {
		return 4096
	}
	return 0
}

func (a *api) events(w httpserve.ResponseWriter, r *httpserve.Request) {
	release, ok := a.follower(w, r)
	if !ok {
		return
	}
	defer release()
	evs, dropped, cancel := a.s.hub.Subscribe()
	defer cancel()
	// The status first, taken after subscribing: nothing between the two
	// is lost, and a client starts from a whole picture.
	st, err := a.r.Peek(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http1.StatusOK)
	send := func(kind string, id uint64, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		w.SetWriteDeadline(time.Now().Add(writeTimeout))
		if id > 0 {
			_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, kind, b)
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b)
		}
		return err == nil
	}
	if !send("status", 0, st) || w.Flush() != nil {
		return
	}
	// A comment line keeps a quiet event stream alive.
	stream(r.Context(), w, evs, dropped, []byte(": keep-alive\n\n"), func(ev *Event) bool { return send(ev.Kind.String(), ev.Seq, ev) },
		func(n uint64) bool { return send("dropped", 0, map[string]uint64{"dropped": n}) })
}
