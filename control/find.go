package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/clusterrun/clusterrun/status"
)

// Found is one runner of this user, found by its control socket.
type Found struct {
	// Socket is the control socket's path.
	Socket string
	// Status is the runner's status, when it answered.
	Status *status.Runner
	// Err says why it did not answer.
	Err error
}

// maxSockets bounds how many sockets Runners asks at once: a directory
// full of stale sockets must not open as many connections.
const maxSockets = 16

// Runners asks every control socket in Dir for its status, at most
// maxSockets at a time, until ctx ends. A socket that refuses the
// connection belongs to a runner that is gone (killed before it could
// remove it): it is left out. The others come back sorted by config file.
func Runners(ctx context.Context) ([]Found, error) {
	paths, err := filepath.Glob(filepath.Join(Dir(), "*.sock"))
	if err != nil {
		return nil, err
	}
	out := make([]Found, len(paths))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxSockets)
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c := DialSocket(p)
			defer c.Close()
			var st status.Runner
			out[i] = Found{Socket: p}
			if err := c.Get(ctx, "/v1/status", &st); err != nil {
				out[i].Err = err
				return
			}
			out[i].Status = &st
		}()
	}
	wg.Wait()
	out = slices.DeleteFunc(out, func(f Found) bool { return f.Status == nil && gone(f.Err) })
	slices.SortFunc(out, func(a, b Found) int { return strings.Compare(a.Config(), b.Config()) })
	return out, nil
}

// Config is the runner's config file (its socket when it did not answer).
func (f Found) Config() string {
	if f.Status != nil {
		return f.Status.Config
	}
	return f.Socket
}

// gone reports an error that says nobody listens on the socket.
func gone(err error) bool {
	return errors.Is(err, ErrNotRunning) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)
}
