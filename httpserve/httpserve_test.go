package httpserve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Past the cap a connection is answered 503 with a JSON error at once,
// not left in the backlog; a closed connection gives its place back; the
// refusals are logged once per burst.
func TestConnectionCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logged []string
	logf := func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}
	o := Options{Name: "test", MaxConns: 2, Logf: logf}
	l := Listener(ln, o)
	srv := NewServer(HandlerFunc(func(w ResponseWriter, _ *Request) { io.WriteString(w, "ok\n") }), o)
	go srv.Serve(l)
	defer srv.Close()

	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Accept runs on the server's goroutine: wait until both are counted.
	for deadline := time.Now().Add(10 * time.Second); l.Open() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the listener counts %d open connections, want 2", l.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("a connection past the cap got no answer: %v", err)
		}
		var e Error
		if resp.StatusCode != 503 || json.NewDecoder(resp.Body).Decode(&e) != nil || !strings.Contains(e.Error, "busy: 2 connections") {
			t.Errorf("past the cap: %s %+v", resp.Status, e)
		}
		c.Close()
	}
	held[0].Close()
	for deadline := time.Now().Add(10 * time.Second); l.Open() > 1; {
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection kept its place: %d open", l.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + ln.Addr().String() + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("under the cap again: %v %v", resp, err)
	}
	resp.Body.Close()
	l.refusals.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 2 || !strings.Contains(logged[0], "test: refused a connection") || !strings.Contains(logged[1], "2 more like it") {
		t.Errorf("logged %q, want the first refusal and a count of the 2 others", logged)
	}
}

// A connection that sends no complete headers is closed after the header
// timeout, and a keep-alive one that stays idle after the idle timeout.
func TestTimeoutsCloseIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Name: "test", ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond}
	l := Listener(ln, o)
	srv := NewServer(HandlerFunc(func(w ResponseWriter, _ *Request) { io.WriteString(w, "ok\n") }), o)
	go srv.Serve(l)
	defer srv.Close()
	for name, send := range map[string]string{
		"half a request":                "GET / HTTP/1.1\r\nHost: x\r\n",
		"an idle keep-alive connection": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, send)
		// A generous bound: the server must close it, long before this.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("%s was not closed by the server: %v", name, err)
		}
		c.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); l.Open() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted open", l.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
