//go:build linux

package proc

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The test process listens on a port: PortHolders finds it there, by pid
// and command line, and InUseBy says so.
func TestPortHoldersFindsTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	holders, hidden := PortHolders(port)
	if hidden || len(holders) != 1 || holders[0].PID != os.Getpid() {
		t.Fatalf("PortHolders(%d) = %+v, hidden %v; want this process (%d)", port, holders, hidden, os.Getpid())
	}
	if !strings.Contains(holders[0].Command, "proc.test") {
		t.Errorf("command %q does not name the test binary", holders[0].Command)
	}
	if msg := InUseBy(port); !strings.Contains(msg, "is held by pid "+strconv.Itoa(os.Getpid())+" (") {
		t.Errorf("InUseBy = %q", msg)
	}
}

// A port nothing listens on has no holder, and no message.
func TestPortHoldersNone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if h, hidden := PortHolders(port); len(h) != 0 || hidden {
		t.Errorf("PortHolders of a closed port = %+v, %v", h, hidden)
	}
	if msg := InUseBy(port); msg != "" {
		t.Errorf("InUseBy of a closed port = %q", msg)
	}
}
