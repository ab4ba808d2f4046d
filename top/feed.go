package top

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/status"
)

// feed is the view's side of the API: the event stream and the log
// stream run on their own goroutines and hand what they read to the
// program; reads and commands are tea.Cmds. It holds no view state.
type feed struct {
	c    *control.Client
	send func(tea.Msg)
	ctx  context.Context

	mu sync.Mutex
	// stopLogs ends the log stream of the previous scope.
	stopLogs context.CancelFunc
	// refreshing coalesces the reads that events ask for.
	refreshing, again bool
}

// reconnectEvery is how often a gone runner is looked for.
const reconnectEvery = time.Second

// events follows /v1/events until ctx ends, opening it again a second
// after it ends: the runner may come back (a restart of clusterrun, the
// same config file, the same socket).
func (f *feed) events() {
	for f.ctx.Err() == nil {
		err := f.c.Events(f.ctx, func(name string, data []byte) error {
			if name == "status" {
				var st status.Runner
				if err := jsonUnmarshal(data, &st); err != nil {
					return err
				}
				f.send(statusMsg{st: st})
				return nil
			}
			if name == "dropped" {
				return nil // the status read each event triggers catches up
			}
			var ev control.Event
			if err := jsonUnmarshal(data, &ev); err != nil {
				return err
			}
			f.send(eventMsg{ev: ev})
			return nil
		})
		if f.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the event stream ended")
		}
		f.send(downMsg{err: err})
		select {
		case <-time.After(reconnectEvery):
		case <-f.ctx.Done():
			return
		}
	}
}

// follow points the log stream at scope ("web" or "web.2"); lines of an
// instance are the app's lines filtered here.
func (f *feed) follow(scope string) {
	f.mu.Lock()
	if f.stopLogs != nil {
		f.stopLogs()
	}
	ctx, cancel := context.WithCancel(f.ctx)
	f.stopLogs = cancel
	f.mu.Unlock()
	app, inst, one := strings.Cut(scope, ".")
	go func() {
		for ctx.Err() == nil {
			// Each stream replays the history first: start the pane
			// afresh, or a runner that came back would show it twice.
			f.send(logResetMsg{scope: scope})
			f.c.Logs(ctx, control.LogsQuery{App: app, Lines: 200, Follow: true}, func(rec logmux.Record) error {
				if one && rec.Stream != logmux.Runner && itoa(rec.Instance) != inst {
					return nil
				}
				f.send(logMsg{scope: scope, rec: rec})
				return nil
			})
			select {
			case <-time.After(reconnectEvery):
			case <-ctx.Done():
			}
		}
	}()
}

// fetch reads the status: sampled (CPU and memory, 200ms) or not.
func (f *feed) fetch(sampled bool) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		path := "/v1/status"
		if !sampled {
			path += "?sample=false"
		}
		var st status.Runner
		if err := f.c.Get(ctx, path, &st); err != nil {
			return statusErr{err}
		}
		return statusMsg{st: st, sampled: sampled}
	}
}

// refresh reads the status after an event; while one read is under way,
// further events make one more read after it, not one each.
func (f *feed) refresh() tea.Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refreshing {
		f.again = true
		return nil
	}
	f.refreshing = true
	return func() tea.Msg {
		for {
			msg := f.fetch(false)()
			f.mu.Lock()
			if !f.again {
				f.refreshing = false
				f.mu.Unlock()
				return msg
			}
			f.again = false
			f.mu.Unlock()
			f.send(msg)
		}
	}
}

// post sends a command and answers with what the runner said.
func (f *feed) post(what, path string, body any) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Minute)
		defer cancel()
		a, err := f.c.Post(ctx, path, body)
		return doneMsg{what: what, a: a, err: err}
	}
}
