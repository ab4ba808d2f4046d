package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/http1"
	"github.com/clusterrun/clusterrun/logmux"
)

// ErrNotRunning means no runner serves the config file.
var ErrNotRunning = errors.New("no runner is up for this file")

// notRunning is ErrNotRunning said for one runner.
type notRunning string

func (e notRunning) Error() string        { return string(e) }
func (e notRunning) Is(target error) bool { return target == ErrNotRunning }

// Client talks to one runner's API, a connection a request: the CLI
// sends few, and a connection to the socket costs next to nothing.
type Client struct {
	dial func(ctx context.Context) (net.Conn, error)
	// host is the Host field: "clusterrun" on the socket.
	host string
	// token is sent as the bearer token (TCP only).
	token string
	// notRunning explains a refused connection.
	notRunning string
}

// Dial returns a client of the runner started with configPath, on its unix
// socket. It fails at once when there is no socket to connect to.
func Dial(configPath string) (*Client, error) {
	path := SocketPath(configPath)
	if err := checkPath(path); err != nil {
		return nil, err
	}
	c := DialSocket(path)
	c.notRunning = fmt.Sprintf("%v (%s); start it with: clusterrun up -f %s", ErrNotRunning, configPath, configPath)
	return c, nil
}

// DialSocket returns a client of the runner whose control socket is path.
func DialSocket(path string) *Client {
	c := newClient(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}, "clusterrun")
	c.notRunning = fmt.Sprintf("%v (no runner answers on %s)", ErrNotRunning, path)
	return c
}

// DialTCP returns a client of a runner's API over TCP at addr
// ("host:port"), sending token.
func DialTCP(addr, token string) *Client {
	c := newClient(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}, addr)
	c.token = token
	c.notRunning = fmt.Sprintf("no runner answers at %s", addr)
	return c
}

func newClient(dial func(ctx context.Context) (net.Conn, error), host string) *Client {
	return &Client{dial: dial, host: host}
}

// Close releases the client. It holds no idle connection: each request's
// connection closes with its answer.
func (c *Client) Close() {}

// Error is an error answer of the API.
type Error struct {
	// Status is the HTTP status: 404 for an unknown app, 409 for a
	// request the runner's state refuses, 503 when it is stopping or busy.
	Status int
	Answer Answer
}

func (e *Error) Error() string { return e.Answer.Error }

// Get decodes the answer to GET path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("cannot read the answer: %w", err)
	}
	return nil
}

// Post sends POST path with body (nil for none) and returns the answer; an
// error answer is an *Error that carries it too.
func (c *Client) Post(ctx context.Context, path string, body any) (Answer, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return Answer{}, err
		}
	}
	resp, err := c.do(ctx, "POST", path, b)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e.Answer, err
		}
		return Answer{}, err
	}
	defer resp.Body.Close()
	var a Answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&a); err != nil {
		return Answer{}, fmt.Errorf("cannot read the answer: %w", err)
	}
	return a, nil
}

// request sends method path with body (nil: none) and returns the
// answer, whatever its status.
func (c *Client) request(ctx context.Context, method, path string, body []byte) (*http1.Response, error) {
	req := &http1.Request{Method: method, Target: path, Host: c.host, Header: http1.Header{}, Body: body}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http1.Do(ctx, c.dial, req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, notRunning(c.notRunning)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no answer from the runner: %w", ctx.Err())
		}
		return nil, fmt.Errorf("cannot reach the runner: %w", err)
	}
	return resp, nil
}

// do sends a request; an answer other than 200 becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http1.Response, error) {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http1.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(b, &e.Answer) != nil || e.Answer.Error == "" {
		e.Answer.Error = fmt.Sprintf("the runner answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil, e
}

// LogsQuery selects what Logs streams.
type LogsQuery struct {
	App    string
	Lines  int
	Follow bool
}

// Logs streams the runner's log lines to fn: first up to q.Lines of
// history, then, with q.Follow, the live stream until the runner stops,
// ctx ends, or fn returns an error (which Logs returns).
func (c *Client) Logs(ctx context.Context, q LogsQuery, fn func(logmux.Record) error) error {
	v := url.Values{}
	if q.App != "" {
		v.Set("app", q.App)
	}
	v.Set("n", strconv.Itoa(q.Lines))
	v.Set("follow", strconv.FormatBool(q.Follow))
	resp, err := c.do(ctx, "GET", "/v1/logs?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	defer stop()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: logmux cuts lines at 16 KiB,
			// so this is only the JSON escaping of one; read the rest.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(append([]byte{}, line...), rest...), err2
		}
		if len(bytes.TrimSpace(line)) > 0 {
			rec, perr := logmux.ParseJSON(line)
			if perr != nil {
				return fmt.Errorf("bad log line from the runner: %w", perr)
			}
			if ferr := fn(rec); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			// The runner stopped, or ctx ended.
			return nil
		}
	}
}

// Events streams /v1/events to fn, one call per event with its name and
// JSON data, until the runner stops (nil), ctx ends (nil), or fn returns
// an error (which Events returns).
func (c *Client) Events(ctx context.Context, fn func(name string, data []byte) error) error {
	resp, err := c.do(ctx, "GET", "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	defer stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var name string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data != nil {
				if err := fn(name, data); err != nil {
					return err
				}
			}
			name, data = "", nil
		case line[0] == ':':
			// A comment: the keep-alive.
		default:
			k, v, _ := bytes.Cut(line, []byte(":"))
			v = bytes.TrimPrefix(v, []byte(" "))
			switch string(k) {
			case "event":
				name = string(v)
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, v...)
			}
		}
	}
	return nil
}

// Probe sends GET path (/healthz or /readyz) and decodes the body into
// out whatever the status, which it returns: those endpoints answer 503
// with a reason.
func (c *Client) Probe(ctx context.Context, path string, out any) (int, error) {
	resp, err := c.request(ctx, "GET", path, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("the runner answered %s with no JSON: %w", resp.Status, err)
	}
	return resp.StatusCode, nil
}
