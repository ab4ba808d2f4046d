package cli

import (
	"os"
	"testing"

	"github.com/clusterrun/clusterrun/configload"
)

// TestMain lets the test binary be the config reader that load and loader
// start, as the clusterrun binary is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == configload.ChildArg {
		os.Exit(configload.RunChild(os.Args[2:]))
	}
	os.Exit(m.Run())
}
