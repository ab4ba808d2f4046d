package proxy

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// asyncioServer is an event-loop backend: one Python process, one thread, an
// asyncio server. The first line picks what a connection does:
//
//	"sum\n"  read until EOF, answer "<length> <sha256>\n", close (half-close)
//	"echo\n" answer every line upper-cased until EOF (keep-alive traffic)
//
// It prints its port once it listens.
const asyncioServer = `
import asyncio, hashlib, sys

async def handle(reader, writer):
    try:
        mode = await reader.readline()
        if mode == b"sum\n":
            data = await reader.read()
            writer.write(b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))
        elif mode == b"echo\n":
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line.upper())
                await writer.drain()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
`

func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("python3 is not installed: skipping the event-loop backend test (apt-get install python3)")
	return ""
}

// startAsyncio runs asyncioServer and returns its address once it listens.
func startAsyncio(t *testing.T, py string) string {
	t.Helper()
	cmd := exec.Command(py, "-c", asyncioServer)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start the asyncio server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		waitClosed(t, exited, "the asyncio server to exit after SIGKILL")
	})
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatal("the asyncio server exited before printing its port")
		}
		return "127.0.0.1:" + p
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for the asyncio server to print its port", waitLimit)
	}
	panic("unreachable")
}

func TestEventLoopBackend(t *testing.T) {
	py := python(t)
	a, b := startAsyncio(t, py), startAsyncio(t, py)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{{ID: 1, Addr: a}, {ID: 2, Addr: b}})

	// Half-close: the answer comes only after the backend's loop saw EOF.
	payload := make([]byte, 2<<20)
	rand.Read(payload)
	c := dial(t, p.addr)
	go func() {
		io.WriteString(c, "sum\n")
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	answer, err := io.ReadAll(c)
	if err != nil || string(answer) != sumLine(payload) {
		t.Fatalf("half-close through an asyncio backend: %q, %v; want %q", answer, err, sumLine(payload))
	}

	// Keep-alive clients at once, spread over both loops by least-conn.
	const clients, lines = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	conns := make([]net.Conn, clients)
	waitFor(t, func() bool { return totalActive(p.Proxy) == 0 }, "the half-closed connection to end")
	for i := range clients {
		conns[i] = dial(t, p.addr)
		if _, err := io.WriteString(conns[i], "echo\n"); err != nil {
			t.Fatal(err)
		}
		// One pick at a time, so each sees the loads the earlier ones left.
		waitFor(t, func() bool { return totalActive(p.Proxy) == i+1 }, fmt.Sprintf("connection %d to be forwarded", i))
	}
	if act := p.Active(); act[1] != clients/2 || act[2] != clients/2 {
		t.Fatalf("Active() = %v with %d open connections, want them split evenly", act, clients)
	}
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(c)
			for j := range lines {
				msg := fmt.Sprintf("client %d line %d\n", i, j)
				if _, err := io.WriteString(c, msg); err != nil {
					errs <- err
					return
				}
				got, err := r.ReadString('\n')
				if err != nil || got != strings.ToUpper(msg) {
					errs <- fmt.Errorf("client %d line %d: got %q, %v", i, j, got, err)
					return
				}
			}
			c.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
