// Command goapp is the Go hello app of the throughput benchmarks: a minimal
// net/http server that answers every request with one JSON line naming its
// pid, so the load generator can count which instance answered:
//
//	{"lang":"go","app":"hello","instance":1,"pid":1234}
//
// Where it listens, in order:
//
//   - the first socket passed with the systemd protocol (LISTEN_FDS,
//     LISTEN_PID; go-systemd's activation package). A socket that is bound
//     but not listening — what clusterrun's proxy mode hands each instance,
//     so that apps binding $PORT themselves can take the port — is put into
//     the listening state first (SO_ACCEPTCONN is 0, so listen(2) it);
//   - otherwise 127.0.0.1:$PORT (default 8080), bound by itself.
//
// Once it serves it sends READY=1 to NOTIFY_SOCKET, if there is one. On
// SIGTERM or SIGINT it stops accepting, finishes what is in flight (at most
// 5 s) and exits 0.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// backlog is the listen(2) backlog for a socket this app puts into the
// listening state; the kernel caps it at net.core.somaxconn.
const backlog = 4096

func main() {
	instance, err := strconv.Atoi(os.Getenv("CLUSTERRUN_INSTANCE"))
	if err != nil {
		instance = -1
	}
	who := fmt.Sprintf("goapp instance %d pid %d", instance, os.Getpid())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	ln, where, err := listener()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
	body := []byte(fmt.Sprintf(`{"lang":"go","app":"hello","instance":%d,"pid":%d}`+"\n", instance, os.Getpid()))
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", length)
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("%s listening on %s\n", who, where)
	// Without NOTIFY_SOCKET (not under clusterrun) this does nothing.
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot send READY=1: %v\n", who, err)
	}

	select {
	case err := <-served:
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	case <-sigs:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
}

// listener returns the inherited socket, listening, or one bound to $PORT,
// and says which for the log.
func listener() (net.Listener, string, error) {
	// Files returns nothing unless LISTEN_PID is our pid.
	files := activation.Files(true)
	if len(files) == 0 {
		port := os.Getenv("PORT")
		if port == "" {
			port = "8080"
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return nil, "", fmt.Errorf("cannot listen on port %s: %w", port, err)
		}
		return ln, "port " + port, nil
	}
	for _, f := range files[1:] {
		f.Close()
	}
	f := files[0]
	defer f.Close() // FileListener keeps its own duplicate
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, "", fmt.Errorf("fd 3: %w", err)
	}
	// SyscallConn, not Fd: Fd would switch the open file description, which
	// every instance shares, to blocking mode under the other instances.
	listening := false
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var v int
		if v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); serr != nil {
			return
		}
		if v == 0 {
			serr = syscall.Listen(int(fd), backlog)
		} else {
			listening = true
		}
	}); err != nil {
		return nil, "", fmt.Errorf("fd 3: %w", err)
	}
	if serr != nil {
		return nil, "", fmt.Errorf("fd 3 (%s): cannot make it listen: %w", f.Name(), serr)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, "", fmt.Errorf("fd 3 (%s) is not a stream socket: %w", f.Name(), err)
	}
	where := fmt.Sprintf("fd 3 (%s, %s)", f.Name(), ln.Addr())
	if !listening {
		where += ", listen(2) called here"
	}
	return ln, where, nil
}
