package httpserve

import (
	"encoding/json"
	"net/http"
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

// WriteJSON answers v as JSON with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "cannot encode the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// WriteError answers an Error.
func WriteError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(ErrorBody(code, msg))
}
