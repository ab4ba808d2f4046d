package logmux

import (
	"bytes"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; it is generous because -race on
// a shared 2-core machine is slow, and a hang must still end in a message.
const waitLimit = 20 * time.Second

// t0 is in time.Local so that the text timestamp reads 14:07:09.123 whatever
// the machine's zone.
var t0 = time.Date(2024, 3, 5, 14, 7, 9, 123456789, time.Local)

func fixedClock() time.Time { return t0 }

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
}

func recv(t *testing.T, ch <-chan Record, what string) Record {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatalf("channel closed while waiting for %s", what)
		}
		return r
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
	panic("unreachable")
}

// waitFor polls cond, for conditions no channel can signal (goroutine counts).
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// lineBuffer records the output and checks on every call that a Write holds
// whole lines only.
type lineBuffer struct {
	t      *testing.T
	mu     sync.Mutex
	buf    bytes.Buffer
	writes []string
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) == 0 || p[len(p)-1] != '\n' {
		b.t.Errorf("Write got %.200q, want whole lines ending in a newline", p)
	}
	b.writes = append(b.writes, string(p))
	return b.buf.Write(p)
}

// Writes returns what each Write call got.
func (b *lineBuffer) Writes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.writes)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lineBuffer) Lines() []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("cannot create pipe: %v", err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}
