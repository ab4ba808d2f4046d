package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	for i, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"help"}, 0, "clusterrun up"},
		{[]string{"version"}, 0, "clusterrun "},
		{[]string{"up", "--log-format", "xml"}, 2, "--log-format must be text or json"},
		{[]string{"up", "--color", "sometimes"}, 2, "--color must be auto, always or never"},
		{[]string{"check", "extra"}, 2, "check takes no arguments"},
		{[]string{"restart", "-f", "x.hcl"}, 2, "wrong arguments for restart"},
		{[]string{"check", "-f", "/nonexistent/cluster.hcl"}, 2, "/nonexistent/cluster.hcl"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("#%d run(%q) = %d, output %q %q; want %d and %q", i, tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out)
		}
	}
}
