// Package loadgen is a small HTTP/1.1 load generator for loopback tests and
// benchmarks. It speaks HTTP over raw connections on purpose: net/http's
// client silently retries a request that failed on a reused keep-alive
// connection, which would hide exactly the failures a reload benchmark is
// about. Every failure is counted once, by kind.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Kind classifies the outcome of one request.
type Kind int

const (
	OK      Kind = iota
	Refused      // connect: connection refused
	Reset        // connection reset or closed before a full response
	Timeout      // no full response within Options.Timeout
	Non2xx       // a response, but not 2xx
	Other        // anything else
	numKinds
)

var kindNames = [...]string{"ok", "refused", "reset", "timeout", "non-2xx", "other"}

func (k Kind) String() string { return kindNames[k] }

// Options describe a load run. Every run is bounded by Duration and by
// MaxRequests, whichever comes first, as well as by its context.
type Options struct {
	// Addr is host:port, always a loopback address in this project.
	Addr string
	Path string
	// Workers is the number of concurrent connections.
	Workers int
	// KeepAlive reuses connections; otherwise every request carries
	// "Connection: close" and gets a new connection.
	KeepAlive   bool
	Duration    time.Duration
	MaxRequests int
	// Timeout bounds one request, connect included.
	Timeout time.Duration
}

// Sample is one request's outcome.
type Sample struct {
	// At is when the request started, since the run began.
	At      time.Duration
	Latency time.Duration
	Kind    Kind
	// PID is the "pid" field of a JSON body, if any: which instance answered.
	PID int
}

// Result is everything a run saw.
type Result struct {
	Start   time.Time
	Samples []Sample
	// Errors keeps the first few error texts of each kind, for messages.
	Errors map[Kind][]string
}

// Run drives load until ctx ends, Duration passes or MaxRequests were sent.
func Run(ctx context.Context, o Options) *Result {
	if o.Path == "" {
		o.Path = "/"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 1_000_000
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	res := &Result{Start: time.Now(), Errors: make(map[Kind][]string)}
	var mu sync.Mutex
	var sent int
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if sent >= o.MaxRequests {
			return false
		}
		sent++
		return true
	}
	var wg sync.WaitGroup
	per := make([][]Sample, o.Workers)
	perErr := make([]map[Kind][]string, o.Workers)
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &client{o: o, start: res.Start, errs: make(map[Kind][]string)}
			end, _ := ctx.Deadline()
			for ctx.Err() == nil && take() {
				s := c.do(ctx)
				// A dial reaches the run's deadline on its own and fails with
				// a timeout a moment before ctx reports it: the end of the
				// run, not a failure.
				if s.Kind != OK && (ctx.Err() != nil || !time.Now().Before(end)) {
					break
				}
				per[w] = append(per[w], s)
			}
			c.close()
			perErr[w] = c.errs
		}(w)
	}
	wg.Wait()
	for w := range per {
		res.Samples = append(res.Samples, per[w]...)
		for k, es := range perErr[w] {
			if len(res.Errors[k]) < 5 {
				res.Errors[k] = append(res.Errors[k], es...)
			}
		}
	}
	sort.Slice(res.Samples, func(i, j int) bool { return res.Samples[i].At < res.Samples[j].At })
	return res
}

type client struct {
	o     Options
	start time.Time
	conn  net.Conn
	br    *bufio.Reader
	errs  map[Kind][]string
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) fail(s Sample, k Kind, err error) Sample {
	s.Kind = k
	if len(c.errs[k]) < 5 {
		c.errs[k] = append(c.errs[k], err.Error())
	}
	c.close()
	return s
}

func (c *client) do(ctx context.Context) Sample {
	t0 := time.Now()
	s := Sample{At: t0.Sub(c.start)}
	defer func() { s.Latency = time.Since(t0) }()
	deadline := t0.Add(c.o.Timeout)
	if c.conn == nil {
		d := net.Dialer{Deadline: deadline}
		conn, err := d.DialContext(ctx, "tcp", c.o.Addr)
		if err != nil {
			s = c.fail(s, classify(err, true), err)
			s.Latency = time.Since(t0)
			return s
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
	}
	c.conn.SetDeadline(deadline)
	req := "GET " + c.o.Path + " HTTP/1.1\r\nHost: " + c.o.Addr + "\r\n"
	if !c.o.KeepAlive {
		req += "Connection: close\r\n"
	}
	if _, err := io.WriteString(c.conn, req+"\r\n"); err != nil {
		s = c.fail(s, classify(err, false), err)
		s.Latency = time.Since(t0)
		return s
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		s = c.fail(s, classify(err, false), err)
		s.Latency = time.Since(t0)
		return s
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s = c.fail(s, classify(err, false), err)
		s.Latency = time.Since(t0)
		return s
	}
	s.PID = PidOf(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.Kind = Non2xx
		if len(c.errs[Non2xx]) < 5 {
			c.errs[Non2xx] = append(c.errs[Non2xx], resp.Status)
		}
	}
	if !c.o.KeepAlive || resp.Close {
		c.close()
	}
	s.Latency = time.Since(t0)
	return s
}

func classify(err error, connecting bool) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Reset
	case connecting:
		return Other
	}
	return Other
}

var pidKey = []byte(`"pid":`)

// PidOf reads the "pid" field of an app's JSON answer, or 0.
func PidOf(body []byte) int {
	i := bytes.Index(body, pidKey)
	if i < 0 {
		return 0
	}
	b := body[i+len(pidKey):]
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(string(b[:j]))
	return n
}

// Counts returns how many samples of each kind there are among s.
func Counts(s []Sample) [numKinds]int {
	var c [numKinds]int
	for _, x := range s {
		c[x.Kind]++
	}
	return c
}

// Failed is the number of samples that are not OK.
func Failed(s []Sample) int {
	c := Counts(s)
	return len(s) - c[OK]
}

// Between returns the samples that started in [from, to) of the run.
func Between(s []Sample, from, to time.Duration) []Sample {
	i := sort.Search(len(s), func(i int) bool { return s[i].At >= from })
	j := sort.Search(len(s), func(i int) bool { return s[i].At >= to })
	return s[i:j]
}

// Quantile returns the q-quantile (0..1) of the samples' latencies.
func Quantile(s []Sample, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	l := make([]time.Duration, len(s))
	for i, x := range s {
		l[i] = x.Latency
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	k := int(q * float64(len(l)-1))
	return l[k]
}

// PIDs returns how many OK responses each pid gave.
func PIDs(s []Sample) map[int]int {
	m := make(map[int]int)
	for _, x := range s {
		if x.Kind == OK && x.PID != 0 {
			m[x.PID]++
		}
	}
	return m
}

// Summary is a one-line description of s, for test failures and logs.
func Summary(r *Result, s []Sample) string {
	c := Counts(s)
	out := fmt.Sprintf("%d requests: %d ok", len(s), c[OK])
	for k := Refused; k < numKinds; k++ {
		if c[k] > 0 {
			out += fmt.Sprintf(", %d %s %q", c[k], k, r.Errors[k])
		}
	}
	return out
}
