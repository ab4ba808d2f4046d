package control

import (
	"time"

	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/runner"
)

// Request is one command.
type Request struct {
	// Cmd is status, reload, restart, scale, stop, start or logs.
	Cmd string `json:"cmd"`
	App string `json:"app,omitempty"`
	// Instance is the instance number for restart; -1 means all.
	Instance int `json:"instance"`
	// Scale is "N", "+N" or "-N".
	Scale string `json:"scale,omitempty"`
}

// Response answers a Request (every command but logs).
type Response struct {
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
	Message string  `json:"message,omitempty"`
	Status  *Status `json:"status,omitempty"`
}

// Status is runner.Status with each process's resource use.
type Status struct {
	PID        int         `json:"pid"`
	Config     string      `json:"config"`
	Goroutines int         `json:"goroutines"`
	Apps       []AppStatus `json:"apps"`
}

// AppStatus is runner.AppStatus with resource use per process.
type AppStatus struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Instances int      `json:"instances"`
	Listeners []string `json:"listeners"`
	Procs     []Proc   `json:"procs"`
}

// Proc is one process, with the resource use of its whole process group.
type Proc struct {
	runner.InstanceStatus
	UptimeSeconds float64 `json:"uptime_seconds"`
	// CPUPercent is the group's CPU use over a short sample (100 = one core);
	// -1 where it cannot be measured.
	CPUPercent float64 `json:"cpu_percent"`
	// RSSBytes is the group's summed resident memory; -1 where unknown.
	RSSBytes int64 `json:"rss_bytes"`
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
}

func toLogLine(r *logmux.Record) LogLine {
	return LogLine{Time: r.Time, App: r.App, Instance: r.Instance, PID: r.PID, Stream: r.Stream.String(), Line: string(r.Line), Cut: r.Cut}
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
	return logmux.Record{Time: l.Time, App: l.App, Instance: l.Instance, PID: l.PID, Stream: st, Line: []byte(l.Line), Cut: l.Cut}
}
