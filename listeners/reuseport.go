package listeners

import "golang.org/x/sys/unix"

// setReusePort lets every instance slot bind its own socket to the address.
// Only Linux spreads connections evenly across such sockets; on macOS the
// option exists but the last socket bound takes every connection.
func setReusePort(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}
