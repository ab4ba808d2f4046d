package control

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clusterrun/clusterrun/http1"
)

// Tokens are the bearer tokens of the API over TCP.
type Tokens struct {
	// Full allows every request; ReadOnly allows GET and HEAD only. Each
	// is a SHA-256 of the token, or nil when not configured: comparing
	// digests of the same length keeps the comparison constant-time
	// whatever the length of what a client sends.
	Full, ReadOnly []byte
}

func (t Tokens) any() bool { return t.Full != nil || t.ReadOnly != nil }

// maxTokenFile bounds a token file: a token is a line, not a document.
const maxTokenFile = 4 << 10

// minToken is the shortest token accepted: anything shorter can be guessed.
const minToken = 16

// ReadToken reads a token file: its content without surrounding white
// space, at least minToken bytes, and the SHA-256 of it for Tokens.
func ReadToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("the token file %s is over %d bytes; it should hold one token", path, maxTokenFile)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < minToken {
		return nil, fmt.Errorf("the token in %s has %d bytes, fewer than %d; make one with: openssl rand -base64 32 > %s", path, len(tok), minToken, path)
	}
	if bytes.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("the token in %s contains white space; it must be one word", path)
	}
	sum := sha256.Sum256(tok)
	return sum[:], nil
}

var errNoToken = errors.New("this API needs a bearer token (Authorization: Bearer TOKEN)")

// authorize checks a TCP request's token (its method and Authorization
// field): nil when it may proceed, else an HTTP status and a reason.
func (t Tokens) authorize(method, h string) (int, error) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return http1.StatusUnauthorized, errNoToken
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	full := t.Full != nil && subtle.ConstantTimeCompare(sum[:], t.Full) == 1
	ro := t.ReadOnly != nil && subtle.ConstantTimeCompare(sum[:], t.ReadOnly) == 1
	switch {
	case full:
		return 0, nil
	case ro && (method == "GET" || method == "HEAD"):
		return 0, nil
	case ro:
		return http1.StatusForbidden, errors.New("the read-only token allows GET requests only")
	}
	return http1.StatusUnauthorized, errors.New("the bearer token is not valid for this runner")
}
