package control

import (
	"time"

	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/status"
)

// MaxRequest bounds one request line. Real requests are a few hundred
// bytes; anything near this is not one.
const MaxRequest = 64 << 10

// Request is one command.
type Request struct {
	// Cmd is status, reload, restart, scale, stop, start or logs.
	Cmd string `json:"cmd"`
	App string `json:"app,omitempty"`
	// Instance is the instance number for restart; -1 means all.
	Instance int `json:"instance"`
	// Scale is "N", "+N" or "-N".
	Scale string `json:"scale,omitempty"`
	// Lines is how many lines of history logs replays first.
	Lines int `json:"lines,omitempty"`
	// NoFollow ends logs after the history.
	NoFollow bool `json:"no_follow,omitempty"`
}

// Response answers a Request (every command but logs).
type Response struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	// Apps says, for reload and restart, what happened to each app.
	Apps   []status.AppResult `json:"apps,omitempty"`
	Status *status.Runner     `json:"status,omitempty"`
}

// LogLine is one record of the logs stream.
type LogLine struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance int       `json:"instance"`
	PID      int       `json:"pid"`
	Stream   string    `json:"stream"`
	Line     string    `json:"line"`
	Cut      bool      `json:"cut,omitempty"`
	Tag      string    `json:"tag,omitempty"`
}

func toLogLine(r *logmux.Record) LogLine {
	return LogLine{Time: r.Time, App: r.App, Instance: r.Instance, PID: r.PID, Stream: r.Stream.String(), Line: string(r.Line), Cut: r.Cut, Tag: r.Tag}
}

// Record turns a received line back into a record for formatting.
func (l LogLine) Record() logmux.Record {
	st := logmux.Stdout
	switch l.Stream {
	case "stderr":
		st = logmux.Stderr
	case "runner":
		st = logmux.Runner
	}
	return logmux.Record{Time: l.Time, App: l.App, Instance: l.Instance, PID: l.PID, Stream: st, Line: []byte(l.Line), Cut: l.Cut, Tag: l.Tag}
}
