package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrNotRunning means no runner serves the config file.
var ErrNotRunning = errors.New("no runner is up for this file")

// Dial connects to the runner started with configPath.
func Dial(configPath string) (net.Conn, error) {
	path := SocketPath(configPath)
	if err := checkPath(path); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (%s); start it with: clusterrun up -f %s", ErrNotRunning, configPath, configPath)
		}
		return nil, fmt.Errorf("cannot reach the runner at %s: %w", path, err)
	}
	return c, nil
}

// Do sends req and returns the response, waiting at most until ctx ends.
func Do(ctx context.Context, configPath string, req Request) (Response, error) {
	c, err := Dial(configPath)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	// A runner that refuses the peer answers and hangs up before reading
	// the request, so a failed write may still leave an answer to read.
	werr := json.NewEncoder(c).Encode(req)
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		if werr != nil {
			return Response{}, fmt.Errorf("cannot send the request: %w", werr)
		}
		if ctx.Err() != nil {
			return Response{}, fmt.Errorf("no answer from the runner: %w", ctx.Err())
		}
		return Response{}, fmt.Errorf("cannot read the answer: %w", err)
	}
	return resp, nil
}

// Follow streams the runner's log lines (req.App's, or all) to fn: first
// up to req.Lines of history, then, unless req.NoFollow, the live stream
// until the runner stops, ctx ends, or fn returns an error.
func Follow(ctx context.Context, configPath string, req Request, fn func(LogLine) error) error {
	c, err := Dial(configPath)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req.Cmd = "logs"
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return err
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return nil // the runner stopped
		}
		var resp Response
		if json.Unmarshal(raw, &resp) == nil && resp.Error != "" {
			return errors.New(resp.Error)
		}
		var l LogLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("bad log line: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
}
