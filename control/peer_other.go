//go:build !linux && !darwin

package control

import (
	"errors"
	"net"
)

func peerUID(net.Conn) (int, error) {
	return -1, errors.New("peer credentials are not supported on this system")
}

func peerPID(net.Conn) (int, error) {
	return 0, errors.New("peer credentials are not supported on this system")
}
