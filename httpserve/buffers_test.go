package httpserve

import (
	"io"
	"net"
	"testing"
	"time"
)

// A connection's buffers, handed to the next connection, carry nothing of
// the previous one: not the bytes read ahead, not those written and not
// flushed, not the last answer's body.
func TestBuffersComeBackClean(t *testing.T) {
	old, oldPeer := net.Pipe()
	defer old.Close()
	defer oldPeer.Close()
	cur, curPeer := net.Pipe()
	defer cur.Close()
	defer curPeer.Close()
	hang := time.Now().Add(10 * time.Second) // only a hang reaches it
	for _, c := range []net.Conn{old, oldPeer, cur, curPeer} {
		c.SetDeadline(hang)
	}

	b := getBuffers(old)
	go oldPeer.Write([]byte("GET /old HTTP/1.1\r\nHost: old\r\n\r\nLEFTOVER"))
	if start, _, err := b.rd.ReadHead(1 << 20); err != nil || start != "GET /old HTTP/1.1" {
		t.Fatalf("first connection's head: %q, %v", start, err)
	}
	if n := b.rd.Buffer().Buffered(); n != len("LEFTOVER") {
		t.Fatalf("%d bytes read ahead, want the %d of LEFTOVER", n, len("LEFTOVER"))
	}
	b.bw.WriteString("UNFLUSHED")
	b.body = append(b.body, "old body"...)

	b.reset(cur)
	if len(b.body) != 0 || cap(b.body) == 0 {
		t.Fatalf("body buffer after reset: len %d cap %d, want empty with its room kept", len(b.body), cap(b.body))
	}
	go curPeer.Write([]byte("GET /new HTTP/1.1\r\nHost: new\r\n\r\n"))
	if start, _, err := b.rd.ReadHead(1 << 20); err != nil || start != "GET /new HTTP/1.1" {
		t.Fatalf("next connection's head: %q, %v (the previous one's bytes must be gone)", start, err)
	}
	flushed := make(chan error, 1)
	go func() {
		b.bw.WriteString("fresh")
		flushed <- b.bw.Flush()
		cur.Close()
	}()
	got, err := io.ReadAll(curPeer)
	if err != nil || string(got) != "fresh" {
		t.Fatalf("next connection got %q, %v; want only what was written for it", got, err)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
}
