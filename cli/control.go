package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/clusterrun/clusterrun/control"
	"github.com/clusterrun/clusterrun/http1"
	"github.com/clusterrun/clusterrun/metrics"
	"github.com/spf13/cobra"
)

// controlFlags are the flags of the commands that ask the running "up" to
// do something and wait for the outcome.
type controlFlags struct {
	file    *string
	timeout *time.Duration
}

func addControlFlags(cmd *cobra.Command) controlFlags {
	return controlFlags{
		file:    fileFlag(cmd),
		timeout: cmd.Flags().Duration("timeout", 10*time.Minute, "how long to wait for the runner to finish"),
	}
}

// post sends POST path (with body, nil for none) to the runner, prints its
// message and returns the exit code.
func (f controlFlags) post(stdout, stderr io.Writer, path string, body any) int {
	c, code := dialRunner(*f.file, stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *f.timeout)
	defer cancel()
	a, err := c.Post(ctx, path, body)
	if a.Message != "" {
		fmt.Fprintln(stdout, a.Message)
	}
	return apiFailure(stderr, err)
}

// dialRunner returns a client of the runner of -f file, or nil and the
// exit code after saying why on stderr. Without -f it is the runner of the
// nearest config file; outside any project (no config file up the tree) it
// is the only runner of this user that is up (several: the user chooses).
// A project whose runner is not up never falls back to another project's.
func dialRunner(file string, stderr io.Writer) (*control.Client, int) {
	path, err := configFile(file)
	if file == "" && err != nil {
		if c, code, ok := onlyRunner(stderr, err); ok {
			return c, code
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return nil, ExitUsage
	}
	c, err := control.Dial(path)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return nil, ExitFailure
	}
	return c, ExitOK
}

// onlyRunner picks the one runner of this user when no config file was
// found (why). ok is false when there is no runner at all, so that the
// caller says what it would have said.
func onlyRunner(stderr io.Writer, why error) (*control.Client, int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), lsTimeout)
	defer cancel()
	found, err := control.Runners(ctx)
	if err != nil || len(found) == 0 {
		return nil, 0, false
	}
	if len(found) == 1 {
		return control.DialSocket(found[0].Socket), ExitOK, true
	}
	fmt.Fprintf(stderr, "clusterrun: %v, and %d runners are up; name one with -f:\n", why, len(found))
	for _, f := range found {
		fmt.Fprintf(stderr, "  %s\n", f.Config())
	}
	return nil, ExitUsage, true
}

// apiFailure prints err (nil: nothing) and returns the exit code: 2 for a
// name the runner does not know (the message says what it may be), 1 for
// anything else.
func apiFailure(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "clusterrun: %v\n", err)
	var e *control.Error
	if errors.As(err, &e) && (e.Status == http1.StatusNotFound || e.Status == http1.StatusBadRequest) {
		return ExitUsage
	}
	return ExitFailure
}

// checkReady asks the runner's /readyz and prints one line: "ready", or
// why not. It is a Docker HEALTHCHECK, so it answers within its own bound
// even when the runner does not.
func checkReady(stdout, stderr io.Writer, file string) int {
	c, _ := dialRunner(file, stderr)
	if c == nil {
		return ExitFailure // a health check has two answers
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*metrics.HealthTimeout)
	defer cancel()
	var h metrics.Health
	status, err := c.Probe(ctx, "/readyz", &h)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "clusterrun: not ready: %v\n", err)
		return ExitFailure
	case status == http1.StatusOK:
		fmt.Fprintln(stdout, "ready")
		return ExitOK
	}
	why := h.Reason
	if why == "" {
		why = fmt.Sprintf("the runner answered %d", status)
	}
	fmt.Fprintf(stdout, "not ready: %s\n", why)
	return ExitFailure
}
