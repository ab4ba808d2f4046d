// Package rawsock makes the system calls on non-blocking sockets that the
// runner's data paths (the tcp proxy's event loop, http mode's client
// connections) make themselves instead of through the net package: read,
// send without SIGPIPE, and accept with the client's address. None of them
// waits; each returns EAGAIN where the net package would park.
package rawsock
