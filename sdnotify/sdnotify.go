// Package sdnotify is the runner's side of the sd_notify protocol: a unix
// datagram socket per instance (NOTIFY_SOCKET) on which the instance says
// READY=1, STOPPING=1, STATUS=…, RELOADING=1 or WATCHDOG=1.
//
// One socket per instance, rather than one shared socket keyed by the
// sender's credentials, means a message is attributed correctly even when it
// comes from a short-lived helper such as systemd-notify or from a worker
// process the instance forked.
package sdnotify

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
)

// Message is one datagram, decoded. Fields the protocol defines but the
// runner does not act on are kept in Other.
type Message struct {
	Ready     bool
	Stopping  bool
	Reloading bool
	Watchdog  bool
	// Status is the free-form STATUS= text, if the datagram had one.
	Status    string
	HasStatus bool
	// MainPID is MAINPID=, 0 if absent or invalid.
	MainPID int
	Other   map[string]string
}

// Parse decodes a datagram: newline-separated KEY=VALUE assignments. Lines
// without "=" are ignored, as systemd does.
func Parse(b []byte) Message {
	var m Message
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		k, v, ok := bytes.Cut(line, []byte{'='})
		if !ok || len(k) == 0 {
			continue
		}
		switch string(k) {
		case "READY":
			m.Ready = string(v) == "1"
		case "STOPPING":
			m.Stopping = string(v) == "1"
		case "RELOADING":
			m.Reloading = string(v) == "1"
		case "WATCHDOG":
			m.Watchdog = string(v) == "1"
		case "STATUS":
			m.Status, m.HasStatus = string(v), true
		case "MAINPID":
			m.MainPID = atoi(v)
		default:
			if m.Other == nil {
				m.Other = make(map[string]string)
			}
			m.Other[string(k)] = string(v)
		}
	}
	return m
}

func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Socket is one instance's notify socket.
type Socket struct {
	conn *net.UnixConn
	path string
}

// maxDatagram bounds what one read accepts; systemd's own limit is the
// page-sized PIPE_BUF-ish 4 KiB plus credentials, and longer messages are
// truncated by the kernel rather than buffered.
const maxDatagram = 4096

// Listen creates the socket at path. The path must be short (sun_path).
func Listen(path string) (*Socket, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("cannot create notify socket: %w", err)
	}
	return &Socket{conn: conn, path: path}, nil
}

// Path is the value for NOTIFY_SOCKET.
func (s *Socket) Path() string { return s.path }

// Chown lets an instance that runs as another user send to the socket.
func (s *Socket) Chown(uid, gid int) error { return os.Chown(s.path, uid, gid) }

// Serve calls fn for every message until the socket is closed. It runs in
// its own goroutine; fn must not block for long.
func (s *Socket) Serve(fn func(Message)) {
	buf := make([]byte, maxDatagram)
	for {
		n, _, err := s.conn.ReadFromUnix(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		fn(Parse(buf[:n]))
	}
}

// Close closes the socket, ends Serve and removes the socket file.
func (s *Socket) Close() error {
	err := s.conn.Close()
	os.Remove(s.path)
	return err
}
