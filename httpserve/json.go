package httpserve

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/clusterrun/clusterrun/http1"
)

// Error is the body of every error answer of the runner's HTTP servers.
type Error struct {
	// Error says what went wrong, for people.
	Error string `json:"error"`
	// Status repeats the HTTP status, for clients that keep only the body.
	Status int `json:"status"`
}

// ErrorBody is the JSON of an Error, with a final newline.
func ErrorBody(code int, msg string) []byte {
	b, _ := json.Marshal(Error{Error: msg, Status: code})
	return append(b, '\n')
}

// jsonBufs holds the buffers answers are encoded in: status is asked
// every half second by watch and monitors, and json.Marshal's copy plus
// the appended newline were two allocations of the whole answer each time.
var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WriteJSON answers v as JSON with status code.
func WriteJSON(w ResponseWriter, code int, v any) {
	b := jsonBufs.Get().(*bytes.Buffer)
	defer func() {
		b.Reset()
		jsonBufs.Put(b)
	}()
	// The same bytes as json.Marshal and a newline: Encode escapes HTML
	// as Marshal does, and writes nothing to b when it fails.
	if err := json.NewEncoder(b).Encode(v); err != nil {
		WriteError(w, http1.StatusInternalServerError, "cannot encode the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// WriteError answers an Error.
func WriteError(w ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(ErrorBody(code, msg))
}
