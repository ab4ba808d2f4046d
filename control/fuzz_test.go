package control

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadRequest: whatever a peer sends, the decoder returns a request or
// an error fit to send back; it never panics, and never accepts a line
// over MaxRequest.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		`{"cmd":"status","instance":-1}` + "\n",
		`{"cmd":"scale","app":"web","scale":"+2","instance":-1}` + "\n",
		`{"cmd":"logs","app":"web","lines":50,"no_follow":true,"instance":-1}`,
		`{"cmd":"restart","app":"web","instance":3}`,
		`{"cmd":"x","bogus":1}`,
		`{"cmd":"status","instance":-7}`,
		`[[[[[[[[[[`,
		"\x00\xff",
		"",
		strings.Repeat(`{"cmd":"`, 100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ReadRequest(bufio.NewReaderSize(bytes.NewReader(b), 4096))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		if i := bytes.IndexByte(b, '\n'); i > MaxRequest || i < 0 && len(b) > MaxRequest {
			t.Fatalf("accepted a %d-byte request", len(b))
		}
		if req.Instance < -1 || req.Lines < 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{`{"cmd":"status","instance":-1}` + "\n", ""},
		{`{"cmd":"status","instance":-1}`, ""},
		{strings.Repeat("x", MaxRequest+10) + "\n", "request too large"},
		{`{"cmd":"status","surprise":true}` + "\n", "bad request"},
		{`{"cmd":"restart","instance":-2}` + "\n", "bad request: instance -2"},
		{`{"cmd":"logs","lines":-1,"instance":-1}` + "\n", "bad request: lines -1"},
		{"", "cannot read request"},
	} {
		_, err := ReadRequest(bufio.NewReaderSize(strings.NewReader(tc.in), 4096))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%.40q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%.40q: %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestLongSocketPathIsExplained(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 110))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", dir)
	s, err := Listen("/x/cluster.hcl")
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "a unix socket may have") {
		t.Errorf("Listen with a long path: %v", err)
	}
	if _, err := Dial("/x/cluster.hcl"); err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") {
		t.Errorf("Dial with a long path: %v", err)
	}
}
