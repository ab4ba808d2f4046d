package control

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeToken(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenRules(t *testing.T) {
	full, err := ReadToken(writeToken(t, "full-token-0123456789\n"))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := ReadToken(writeToken(t, "  read-only-token-0123456789  "))
	if err != nil {
		t.Fatal(err)
	}
	both := Tokens{Full: full, ReadOnly: ro}
	for _, tc := range []struct {
		tokens       Tokens
		method, auth string
		code         int
	}{
		{both, "GET", "", 401},
		{both, "GET", "Bearer", 401},
		{both, "GET", "Basic full-token-0123456789", 401},
		{both, "GET", "Bearer wrong-token-0123456789", 401},
		{both, "GET", "Bearer full-token-012345678", 401}, // a prefix
		{both, "GET", "Bearer full-token-0123456789", 0},
		{both, "POST", "Bearer full-token-0123456789", 0},
		{both, "POST", "bearer full-token-0123456789", 0},
		{both, "GET", "Bearer read-only-token-0123456789", 0},
		{both, "HEAD", "Bearer read-only-token-0123456789", 0},
		{both, "POST", "Bearer read-only-token-0123456789", 403},
		{Tokens{ReadOnly: ro}, "POST", "Bearer full-token-0123456789", 401},
		{Tokens{Full: full}, "GET", "Bearer read-only-token-0123456789", 401},
	} {
		r := httptest.NewRequest(tc.method, "/v1/status", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		code, err := tc.tokens.authorize(r.Method, r.Header.Get("Authorization"))
		if code != tc.code || (code == 0) != (err == nil) {
			t.Errorf("%s with %q: %d %v, want %d", tc.method, tc.auth, code, err, tc.code)
		}
	}
}

func TestReadTokenRefusesWeakFiles(t *testing.T) {
	for content, says := range map[string]string{
		"":                                  "fewer than 16",
		"short":                             "fewer than 16",
		"two words-0123456789 and more":     "white space",
		strings.Repeat("x", maxTokenFile+1): "over 4096 bytes",
	} {
		if _, err := ReadToken(writeToken(t, content)); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("token %.20q: %v, want an error saying %q", content, err, says)
		}
	}
	if _, err := ReadToken(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "cannot read the token file") {
		t.Errorf("missing token file: %v", err)
	}
}

func TestParseInstance(t *testing.T) {
	for in, want := range map[string]string{
		"web.2": "web 2", "my.app.10": "my.app 10", "web": "error", ".1": "error", "web.-1": "error", "web.x": "error", "web.": "error",
	} {
		app, n, err := ParseInstance(in)
		got := "error"
		if err == nil {
			got = app + " " + strconv.Itoa(n)
		}
		if got != want {
			t.Errorf("ParseInstance(%q) = %q, want %q", in, got, want)
		}
	}
}
