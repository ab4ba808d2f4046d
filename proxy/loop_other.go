//go:build !linux && !darwin && !freebsd

package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
)

// Elsewhere the proxy has no event loop: Serve says so.

var errUnsupported = fmt.Errorf("proxy mode is not supported on %s (Linux, macOS and FreeBSD only)", runtime.GOOS)

type poller struct{}

func (*poller) close() {}

type loop struct {
	poll   *poller
	failed int
}

func newLoop(*Proxy, int) (*loop, error) { return nil, errUnsupported }
func (*loop) run()                       {}
func (*loop) post(func())                {}
func (*loop) closeDown()                 {}
func (*loop) closeAll()                  {}
func (*loop) letGoOfListener(error)      {}

type dialAddr struct{}

func newDialAddr(netip.AddrPort) dialAddr    { return dialAddr{} }
func takeListener(net.Listener) (int, error) { return -1, errUnsupported }
func closeFD(int)                            {}
