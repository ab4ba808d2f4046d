//go:build !linux

package httpmode

import "net"

// rawAccept: outside Linux every connection is accepted by the net
// package, as a net.Conn.
type rawAccept struct{}

func newRawAccept(net.Listener) *rawAccept   { return nil }
func (*rawAccept) accept() (accepted, error) { panic("unreachable: newRawAccept returns nil") }
func (*rawAccept) close()                    {}
