package logmux

import (
	"encoding/json"
	"fmt"
	"time"
)

// The JSON of a Record is one schema everywhere: `up --log-format json`,
// the API's /v1/logs stream and `logs --log-format json` print the same
// objects, written by AppendJSON and read back by ParseJSON.
//
//	{"time":"2026-12-07T10:00:00.123Z","app":"web","instance":0,"pid":4242,
//	 "stream":"stdout","tag":"+","line":"listening","cut":true}
//
// tag and cut appear only when set; about only on a runner line that
// concerns one app.

// AppendJSON appends r as one JSON object and a newline.
func AppendJSON(dst []byte, r *Record) []byte { return appendJSON(dst, r) }

// jsonRecord is the schema as encoding/json reads it.
type jsonRecord struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance int       `json:"instance"`
	PID      int       `json:"pid"`
	Stream   string    `json:"stream"`
	Tag      string    `json:"tag"`
	About    string    `json:"about"`
	Line     string    `json:"line"`
	Cut      bool      `json:"cut"`
}

// ParseJSON reads one object written by AppendJSON.
func ParseJSON(b []byte) (Record, error) {
	var j jsonRecord
	if err := json.Unmarshal(b, &j); err != nil {
		return Record{}, fmt.Errorf("not a log record: %w", err)
	}
	r := Record{Time: j.Time, App: j.App, Instance: j.Instance, PID: j.PID, Tag: j.Tag, About: j.About, Line: []byte(j.Line), Cut: j.Cut}
	switch j.Stream {
	case "stdout":
		r.Stream = Stdout
	case "stderr":
		r.Stream = Stderr
	case "runner":
		r.Stream = Runner
	default:
		return Record{}, fmt.Errorf("not a log record: stream %q", j.Stream)
	}
	return r, nil
}
