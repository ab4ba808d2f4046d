// Package listeners binds the sockets that instances share and hands them
// over with the systemd socket-activation protocol: fds 3, 4, … in
// listener order, LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID set by an exec
// shim to the instance's own pid.
//
// A Set owns every socket for the runner's whole life: a reload or restart
// reuses the open socket of an unchanged listener, so the kernel's accept
// queue never closes and no connection is refused while instances change.
//
// The sockets instances share are held as bare descriptors, outside Go's
// network poller, and their options are set once, at bind: O_NONBLOCK and
// the backlog belong to the open file description every instance shares,
// so the runner never changes them under running instances, and it is
// never woken by connections meant for them. Only a proxy listener's
// public socket, on which the runner itself accepts, is a Go listener.
package listeners
