// Command go-http is clusterrun's Go example: a tiny HTTP server meant to run
// as N instances that share one listening socket.
//
// Under clusterrun it takes the socket the runner bound from fd 3 (systemd
// socket activation: LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) and tells the
// runner it is ready with sd_notify READY=1. Run by hand it listens on $PORT
// (default 8080) instead. examples/node-http and examples/python-http behave
// exactly the same; the end-to-end tests and the reload benchmark rely on it:
//
//	GET /            200 {"lang":"go","app":"web","instance":2,"pid":1234}
//	GET /slow?ms=N   the same after N ms (0..60000), to test graceful stops
//	GET /healthz     200 ok
//
// Test knobs read at start: BOOT_DELAY_MS=N sleeps N ms before serving and
// before READY=1; BOOT_CRASH=1 exits 1 at once.
//
// On SIGTERM or SIGINT it stops accepting, lets in-flight requests finish
// (for at most 10s) and exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

const (
	// drainTimeout bounds how long a stop waits for in-flight requests.
	drainTimeout = 10 * time.Second
	// idleGrace is how long a stop leaves idle keep-alive connections open
	// for their next request, which is answered with Connection: close.
	idleGrace = time.Second
	// maxSlowMS is the largest wait /slow accepts.
	maxSlowMS = 60000
)

func main() {
	if os.Getenv("BOOT_CRASH") == "1" {
		fmt.Fprintln(os.Stderr, "crashing on boot (BOOT_CRASH=1)")
		os.Exit(1)
	}
	os.Exit(run())
}

func run() int {
	instance, ok := parseUint(os.Getenv("CLUSTERRUN_INSTANCE"), 1<<30)
	if !ok {
		instance = -1 // not started by clusterrun
	}
	who := fmt.Sprintf("go-http instance %d pid %d", instance, os.Getpid())

	bootDelay := 0
	if s := os.Getenv("BOOT_DELAY_MS"); s != "" {
		if bootDelay, ok = parseUint(s, 1<<30); !ok {
			fmt.Fprintf(os.Stderr, "%s: BOOT_DELAY_MS must be a number of milliseconds, not %q\n", who, s)
			return 1
		}
	}

	// Catch the stop signals first, so that a stop during boot is clean too.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	ln, where, err := listen()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		return 1
	}

	select {
	case <-time.After(time.Duration(bootDelay) * time.Millisecond):
	case sig := <-sigs:
		fmt.Printf("%s got %s while booting, exiting\n", who, sigName(sig))
		return 0
	}

	// The answer never changes, so encode it once.
	var body strings.Builder
	enc := json.NewEncoder(&body) // Encode ends the line with "\n"
	enc.SetEscapeHTML(false)      // like JSON.stringify and json.dumps
	if err := enc.Encode(identity{
		Lang:     "go",
		App:      os.Getenv("CLUSTERRUN_APP"),
		Instance: instance,
		PID:      os.Getpid(),
	}); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		return 1
	}

	conns := &openConns{state: make(map[net.Conn]http.ConnState)}
	var draining atomic.Bool
	handler := newHandler([]byte(body.String()))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if draining.Load() {
				// The server closes the connection after this response.
				w.Header().Set("Connection", "close")
			}
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         conns.track,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("%s listening on %s\n", who, where)

	// Tell the runner this instance can take traffic. Without NOTIFY_SOCKET
	// (run by hand) this does nothing.
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot notify READY=1: %v\n", who, err)
	}

	select {
	case err := <-served:
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		return 1
	case sig := <-sigs:
		fmt.Printf("%s got %s, draining\n", who, sigName(sig))
	}

	// Stop accepting (our copy of the socket only: the runner and the other
	// instances keep theirs), then let the open connections wind down by
	// themselves for a moment: every response now carries Connection: close.
	// Calling Shutdown at once would lose requests in two races. It closes
	// idle keep-alive connections while their client may be sending the next
	// request; and it drops, unanswered, a request read after it began — on a
	// shared socket a connection can be accepted right up to the close.
	ln.Close()
	draining.Store(true)
	// Serve returns once its Accept fails on the closed listener; a
	// connection it accepted just before is tracked by then (ConnState).
	select {
	case <-served:
	case <-time.After(time.Second):
	}
	conns.wait(idleGrace)

	// Shutdown closes what stayed idle through the grace and waits for the
	// requests still active.
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	// The listener is already closed (above), so Shutdown may report that;
	// only a drain that ran out of time is a failure.
	if err := srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(os.Stderr, "%s: in-flight requests did not finish within %s\n", who, drainTimeout)
		return 1
	}
	return 0
}

// openConns tracks the server's open connections.
type openConns struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

func (o *openConns) track(c net.Conn, st http.ConnState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(o.state, c)
	} else {
		o.state[c] = st
	}
}

// wait returns once every connection has closed, or after max: a client
// that keeps a connection open and sends nothing must not hold up the stop.
func (o *openConns) wait(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		n := len(o.state)
		o.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// identity is the JSON body of / and /slow; the field order is the wire order.
type identity struct {
	Lang     string `json:"lang"`
	App      string `json:"app"`
	Instance int    `json:"instance"`
	PID      int    `json:"pid"`
}

// listen returns the socket the runner passed as fd 3 or, when there is
// none, a socket bound to $PORT, and says which one it is for the log.
func listen() (net.Listener, string, error) {
	// Read the names first: activation.Listeners unsets the LISTEN_* variables.
	name, _, _ := strings.Cut(os.Getenv("LISTEN_FDNAMES"), ":")
	if name == "" {
		name = "unknown" // systemd's name for an unnamed fd
	}
	// In proxy mode the runner hands each instance a private socket that is
	// bound but not listening, so that an app may bind $PORT itself
	// instead; one that takes fd 3 listens on it.
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") != "" {
		if v, err := syscall.GetsockoptInt(3, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err == nil && v == 0 {
			if err := syscall.Listen(3, 4096); err != nil {
				return nil, "", fmt.Errorf("cannot listen on fd 3: %w", err)
			}
		}
	}
	// Listeners returns nothing unless LISTEN_PID is this process's pid, so
	// a LISTEN_FDS meant for a parent process is never taken by mistake.
	lns, err := activation.Listeners()
	if err != nil {
		return nil, "", fmt.Errorf("cannot use the inherited sockets: %w", err)
	}
	if len(lns) > 0 {
		// This example serves only the first listener.
		for _, l := range lns[1:] {
			if l != nil {
				l.Close()
			}
		}
		if lns[0] == nil {
			return nil, "", errors.New("fd 3 is not a listening stream socket")
		}
		return lns[0], fmt.Sprintf("fd 3 (%s)", name), nil
	}

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return nil, "", fmt.Errorf("cannot listen on port %s: %w", port, err)
	}
	return ln, "port " + port, nil
}

// newHandler routes the three endpoints. A GET pattern also answers HEAD;
// other methods get 405 and unknown paths 404, from ServeMux itself.
func newHandler(body []byte) http.Handler {
	mux := http.NewServeMux()
	writeBody := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeBody(w)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, ok := parseUint(r.URL.Query().Get("ms"), maxSlowMS)
		if !ok {
			http.Error(w, "ms must be an integer from 0 to 60000", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			writeBody(w)
		case <-r.Context().Done(): // the client went away
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", "3")
		w.Write([]byte("ok\n"))
	})
	return mux
}

// parseUint accepts 1 to 10 ASCII digits and a value up to max; the Node
// and Python examples apply the same rule, so all three reject the same input.
func parseUint(s string, max int) (int, bool) {
	if len(s) == 0 || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}

func sigName(sig os.Signal) string {
	if sig == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}
