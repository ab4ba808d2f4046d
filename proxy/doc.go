// Package proxy is the data path of listener mode "proxy": the runner
// accepts on the public socket and forwards each connection's bytes to one
// ready instance's private loopback socket.
//
//	p := proxy.New(ln, proxy.Options{Balance: proxy.LeastConn, Logf: logf})
//	go p.Serve()
//	p.SetBackends(ready) // from the supervisor, whenever readiness changes
//	<-p.Quiesce(id, idle) // before an instance that left the set is stopped
//	…
//	p.Close(ctx)        // at shutdown
//
// The routable set, the leases on it, the balance policies, the queue of
// connections waiting for a backend, Quiesce and the hung watch are package
// route's, which http mode shares; this package owns the event loops that
// move the bytes.
//
// The rules it keeps, and why:
//
//   - An event loop, not goroutines. A goroutine locked to its thread waits
//     in epoll (kqueue on macOS and FreeBSD) and moves the bytes of every
//     connection it accepted through one read buffer: read(2) from one
//     socket, send(2) to the other, raw system calls on non-blocking
//     sockets. Sockets are registered edge-triggered once for their life,
//     so a keep-alive request costs one read and one send each way and
//     nothing else: no goroutine wake-up, no netpoll re-arm, no read that
//     says EAGAIN (a short read drains the socket; with the peer's shutdown
//     already reported, it is the end). That is haproxy's design; it
//     measured 8-26% less CPU per request than haproxy 2.6 here (Go and
//     Node apps, N = 2 and 4, both shapes), and half of what two goroutines
//     with splice pipes per connection cost. A direction whose destination
//     is full keeps the rest in a pooled 16 KiB buffer and stops reading
//     its source until it drains, so what is in flight per direction is
//     bounded. Per connection the proxy holds two descriptors and about
//     450 bytes of Go memory.
//
//   - Zero copy where it pays. A direction that reads a full buffer is a
//     bulk transfer (a download, an upload): it goes on by splice(2),
//     socket to pipe to socket, for as long as its source has bytes ready,
//     then gives the pipe back to a pool of at most 16 per loop (more are
//     closed at once). The direction stays bulk: when its source has bytes
//     again it splices at once, so a transfer that drains its socket often
//     (a busy machine) is not copied a buffer at a time. A 64 MiB download
//     cost the proxy 0.07 ms of CPU per MiB so, against 0.20 ms copied
//     through the buffer; small requests on a connection that never moved
//     a full buffer never touch a pipe. Pipes are claimed from the
//     descriptor budget; without one (or outside Linux) the transfer is
//     copied.
//
//   - What the proxy adds to route's rules: a dial that completes after
//     SetBackends removed its backend is closed unused and the connection
//     tries another; a dial that times out is not a failure (the backend's
//     accept queue is full, or it is stopped): the connection waits for
//     room; one that is refused is tried elsewhere, and when every routable
//     backend refused, the client is closed. Each connection's lease is
//     answered at its first byte back and touched at every read, so
//     Quiesce, the accept-queue bound and the hung watch see it.
//
//   - Nothing a client does can starve the runner. MaxConnections bounds a
//     listener's connections, and every proxy of the process shares one
//     descriptor budget (route.FDBudget). At a bound the loop stops
//     accepting (the listener leaves its poller) and clients wait in the
//     listen backlog; it looks again when one of its connections ends, or
//     after 50ms. Descriptors are closed the moment a connection ends.
//
//   - Close is net/http.Server.Shutdown's: the listener is closed first, so
//     no new connection is accepted, connections waiting for a backend are
//     closed, and open ones (keep-alive included) may finish until ctx ends;
//     then they are closed and Close returns once the loops have.
//
//   - Accept errors that a moment can cure (EMFILE, ENFILE, ECONNABORTED, …)
//     back off 5ms doubling to 1s, as net/http does, and are logged once per
//     burst; any other error ends Serve. Every message goes through a limiter
//     that passes one line per kind every few seconds with a count of the
//     rest, so a refusing backend does not cost a log line per connection.
//
// New takes the socket out of the net.Listener it is given (a duplicate of
// the descriptor; the listener is closed), so the Go runtime's own poller is
// not woken by every new connection. Backends are IP literals and ports;
// they see the runner's loopback address as the peer of every connection:
// the client's address is not passed on.
package proxy
