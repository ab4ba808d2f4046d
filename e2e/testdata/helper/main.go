// Command helper is a test app for the end-to-end tests: what it does is
// chosen by its first argument.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helper MODE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "stopping":
		// Ready at once; after the given delay it announces STOPPING=1 (the
		// "I caught a fatal error" message) and dies half a second later.
		d, _ := time.ParseDuration(os.Args[2])
		notify("READY=1")
		fmt.Println("stopping helper ready, pid", os.Getpid())
		time.Sleep(d)
		notify("STOPPING=1")
		fmt.Println("announced STOPPING=1, pid", os.Getpid())
		time.Sleep(500 * time.Millisecond)
		os.Exit(1)
	case "notify":
		// Sends its arguments as sd_notify messages, then sleeps.
		for _, m := range os.Args[2:] {
			notify(m)
		}
		time.Sleep(time.Hour)
	case "flood":
		// Ready at once; on every SIGUSR1 it prints the given number of
		// bytes of output, in 100-byte lines, whether or not anyone reads.
		n, _ := strconv.Atoi(os.Args[2])
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		notify("READY=1")
		line := strings.Repeat("x", 99) + "\n"
		for range usr1 {
			os.Stdout.WriteString(strings.Repeat(line, n/100))
		}
	case "hold":
		// Started by socket activation (systemd-socket-activate), it holds
		// the sockets while it runs the command after the count that many
		// times in a row, each with the sockets as fds 3, 4, … and
		// LISTEN_FDS, LISTEN_FDNAMES (the command sets LISTEN_PID: it is
		// clusterrun's exec shim). So the sockets outlive each run, as a
		// systemd .socket unit's outlive a restart of its service. The
		// sockets are passed as bare descriptors, never wrapped in an
		// os.File.
		runs, _ := strconv.Atoi(os.Args[2])
		argv := os.Args[3:]
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "LISTEN_PID=") {
				env = append(env, kv)
			}
		}
		files := []uintptr{0, 1, 2}
		for i := range n {
			files = append(files, uintptr(3+i))
		}
		for run := 1; run <= runs; run++ {
			pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: env, Files: files})
			if err != nil {
				fmt.Println("holder: cannot start run", run, err)
				os.Exit(1)
			}
			fmt.Printf("holder: run %d pid %d\n", run, pid)
			var ws syscall.WaitStatus
			for {
				if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
					break
				}
			}
			fmt.Printf("holder: run %d exited with status %d\n", run, ws.ExitStatus())
		}
		os.Exit(0)
	case "logterm":
		// An HTTP server on $PORT (a proxy listener's private port) that
		// says when it gets SIGTERM, then finishes the requests under way
		// and exits 0. GET /slow takes 400ms to answer.
		ln, term := listenPORT()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(400 * time.Millisecond) // a request slower than stop.timeout
			}
			fmt.Fprintf(w, "pid %d\n", os.Getpid())
		})}
		go srv.Serve(ln)
		fmt.Printf("serving, pid %d\n", os.Getpid())
		<-term
		fmt.Printf("SIGTERM received, pid %d\n", os.Getpid())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Exit(0)
	case "upgrade":
		// An HTTP server on $PORT that takes "Upgrade: echo": it answers
		// 101 and then echoes every line it reads, prefixed with its pid,
		// as a WebSocket server would echo frames. Plain requests get its
		// pid. On SIGTERM it says so and exits 0, closing what is open.
		ln, term := listenPORT()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "echo" {
				fmt.Fprintf(w, "pid %d\n", os.Getpid())
				return
			}
			c, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rw.Flush()
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(rw, "%d %s", os.Getpid(), line)
				rw.Flush()
			}
		})}
		go srv.Serve(ln)
		<-term
		fmt.Printf("SIGTERM received, pid %d\n", os.Getpid())
		os.Exit(0)
	case "env":
		// Prints selected variables, then sleeps.
		for _, k := range []string{"LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "PORT", "CLUSTERRUN_APP", "CLUSTERRUN_INSTANCE", "GREETING", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		fmt.Printf("PID=%d\n", os.Getpid())
		_, err := os.Stat("/proc/self/fd/3")
		fmt.Printf("FD3=%v\n", err == nil)
		time.Sleep(time.Hour)
	}
	fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
	os.Exit(2)
}

func notify(msg string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	c, err := net.Dial("unixgram", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify:", err)
		return
	}
	defer c.Close()
	c.Write([]byte(msg))
}

// listenPORT listens on 127.0.0.1:$PORT (a proxy listener's private port)
// and returns the channel that gets SIGTERM, asked for before the bind.
func listenPORT() (net.Listener, <-chan os.Signal) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return ln, term
}
