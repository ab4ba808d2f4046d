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
//     already reported, it is the end). That is haproxy's design, and it
//     measured 20-25% less CPU per request than haproxy here, and half of
//     what two goroutines with splice pipes per connection cost. A
//     direction whose destination is full keeps the rest in a pooled
//     16 KiB buffer and stops reading its source until it drains, so what
//     is in flight per direction is bounded. Per connection the proxy
//     holds two descriptors and about 450 bytes of Go memory.
//
//   - The supervisor decides, the proxy routes. The routable set is an
//     immutable snapshot that SetBackends swaps with one atomic store, so
//     accepting and forwarding never wait on the supervisor's goroutine or a
//     lock it holds, and SetBackends never waits on traffic.
//
//   - Leases, not bytes, are what the rest sees. Each connection holds a
//     lease on its backend from the pick to the close: dialing, forwarded,
//     answered (the first byte came back), with the time of its last byte
//     each way. The backend's counters (load, unanswered) and its list of
//     leases (under the backend's own lock, taken at connect and close,
//     never per byte) are what balancing, the queue, Quiesce, the hung
//     watch and status read. None of it knows how bytes move: an
//     HTTP-aware mode that takes a lease per request reuses all of it.
//
//   - An instance stops getting new connections before it gets its stop
//     signal. SetBackends marks the backends it drops as removed before it
//     returns, and a connection checks that mark after its dial completes:
//     a dial that was in flight during the removal is closed unused and the
//     connection tries another backend. Quiesce then tells when every
//     connection forwarded to it has closed or gone idle, so the stop
//     signal cuts no response off mid-body and resets no connection still
//     in the instance's accept queue.
//
//   - Least-connections by default. A backend's load counts dials in
//     flight as well as forwarded connections, so a burst of accepts does
//     not all pick the same idle backend. Every pick starts its scan at a
//     rotating offset: equal backends take turns. Round-robin uses the same
//     rotation and ignores the load. IPHash is rendezvous hashing of the
//     client's address over the backends' addresses (a slot's private
//     address survives reloads, so a client keeps its slot), bounded by
//     1.25 × the mean of the clients connected (at least 8), with a client
//     that has a connection open going where it is.
//
//   - Connections wait in the runner, not in a full backlog. A backend
//     takes no new connection while it is at MaxPerInstance, or while as
//     many of its connections wait for their first byte as its accept queue
//     holds (its listen backlog, read from the kernel when it becomes
//     routable): the kernel would drop the next SYN and the dial would wait
//     a second for the retransmission. Such connections, and those accepted
//     while nothing is routable, wait in a first-come-first-served queue
//     until a lease ends or is answered or the set changes, for at most
//     WaitForBackend; then they are closed, logged and counted. A dial that
//     times out is not a failure: the connection waits for room. One that
//     is refused is tried on another backend; when every routable backend
//     refused, the client is closed.
//
//   - A hung instance is routed around. A backend that sent nothing for
//     HungAfter while a connection waited that long for its first byte
//     (stopped, deadlocked) gets no new connection, but one at a time to
//     find out, until it answers; the log says so both ways and Backends
//     reports it.
//
//   - Nothing a client does can starve the runner. MaxConnections bounds a
//     listener's connections, and every proxy of the process shares one
//     FDBudget: the soft RLIMIT_NOFILE (read again every second) less a
//     reserve for the instances, their pipes and the control socket. At a
//     bound the proxy stops accepting; clients wait in the listen backlog.
//     Descriptors are closed the moment a connection ends.
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
