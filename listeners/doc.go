// Package listeners binds the sockets that instances share and hands them
// over with the systemd socket-activation protocol: fds 3, 4, … in
// listener order, LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID set by an exec
// shim to the instance's own pid.
//
// A Set owns every socket for the runner's whole life: a reload or restart
// reuses the open socket of an unchanged listener, so the kernel's accept
// queue never closes and no connection is refused while instances change.
// A Set is not safe for concurrent use; the runner's loop owns it.
package listeners
