package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/clusterrun/clusterrun/control"
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

// send sends req to the runner, prints its message and returns the exit
// code.
func (f controlFlags) send(stdout, stderr io.Writer, req control.Request) int {
	resp, code := request(*f.file, req, *f.timeout, stderr)
	if resp.Message != "" {
		fmt.Fprintln(stdout, resp.Message)
	}
	return code
}

// request sends req to the runner of -f file and reports failures on
// stderr: no runner up is one line and exit 1.
func request(file string, req control.Request, timeout time.Duration, stderr io.Writer) (control.Response, int) {
	path, err := configFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return control.Response{}, ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := control.Do(ctx, path, req)
	if err != nil {
		fmt.Fprintf(stderr, "clusterrun: %v\n", err)
		return resp, ExitFailure
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "clusterrun: %s\n", resp.Error)
		return resp, ExitFailure
	}
	return resp, ExitOK
}
