//go:build !linux

package listeners

import (
	"errors"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// adopt: socket activation is systemd's, on Linux only.
func adopt(d *hclconfig.Listener, in *inherited) (*socket, []string, error) {
	return nil, nil, errors.New("cannot take a socket from socket activation: supported on Linux only")
}
