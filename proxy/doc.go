// Package proxy is the data path of listener mode "proxy": the
// runner accepts on the public socket and forwards each connection's bytes
// to one ready instance's private loopback socket.
//
//	p := proxy.New(ln, proxy.Options{Balance: proxy.LeastConn, Logf: logf})
//	go p.Serve()
//	p.SetBackends(ready) // from the supervisor, whenever readiness changes
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
//   - The supervisor decides, the proxy routes. The routable set is an
//     immutable snapshot that SetBackends swaps with one atomic store, so
//     accepting and forwarding never wait on the supervisor's goroutine or a
//     lock it holds, and SetBackends never waits on traffic. Each backend's
//     load is an atomic counter on an object that survives the swaps while
//     the backend stays in the set.
//
//   - An instance stops getting new connections before it gets its stop
//     signal. SetBackends marks the backends it drops as removed before it
//     returns, and a connection checks that mark after its dial completes: a
//     dial that was in flight during the removal is closed unused and the
//     connection tries another backend. Connections forwarded before the
//     removal carry on untouched: draining them is the instance's business.
//
//   - An instance is stopped once quiet. Quiesce(id, idle) tells the
//     runner when every connection forwarded to a removed instance has
//     closed or gone idle, so the stop signal does not cut a response off
//     mid-body or reset a connection still in the instance's accept queue.
//
//   - Least-connections by default. A backend's load counts dials in flight
//     as well as forwarded connections, so a burst of accepts does not all
//     pick the same idle backend before any dial completes. Every pick starts
//     its scan at a rotating offset: equal backends take turns instead of the
//     first in the list taking every short connection. Round-robin uses the
//     same rotation and ignores the load. A pick is a scan of the set, which
//     is small (the instances of one app).
//
//   - A connect that fails before the first byte (refused, timed out) is
//     retried on another routable backend, each backend at most once per
//     connection; only when all have failed is the client closed. A client
//     accepted while no backend is routable (a cold start, a lone instance
//     restarting, a stop-first reload) waits for SetBackends, up to
//     WaitForBackend, instead of being refused: the public socket never
//     refuses during a reload.
//
//   - Zero copy. Each direction is an io.Copy between the two bare
//     *net.TCPConn (or the client's *net.UnixConn), which the standard library
//     turns into splice(2) through a pooled pipe on Linux: bytes go socket to
//     pipe to socket inside the kernel and never through a user-space buffer.
//     Any wrapper type (a counting writer, bufio, a struct embedding
//     net.Conn) would silently fall back to read/write through a 32 KiB
//     buffer, so nothing here wraps a connection, and TestSpliceCarriesTheBytes
//     checks under strace that the bytes of a bulk transfer all go through
//     splice. What one direction holds in flight is bounded by its pipe
//     (1 MiB at most, kernel memory), never by the peers' speeds. Elsewhere
//     (macOS) the same code copies through that 32 KiB buffer.
//
//   - One goroutine per direction. When a direction reaches EOF the
//     destination gets CloseWrite, so a client that sends, shuts down its
//     write side and then reads the answer works, and so does the reverse.
//     When a direction fails, both sockets are closed, which ends the other
//     direction too; the last direction to end closes the connection.
//
//   - Small per connection: the two goroutines, one small struct, the
//     standard library's dial, and six fds (two sockets, two pipes). No
//     deadline or timer is set on a forwarded connection, only the dial's
//     timeout: an idle keep-alive connection costs nothing until a side
//     closes it. A process running only the proxy measured 6.3 MB RSS idle
//     and 7.9 MB with 64 open connections, about 24 KiB each, of which 16 KiB
//     is Go heap and stack (TestMemoryWith64Connections checks both).
//
//   - Close is net/http.Server.Shutdown's: the listener is closed first, so
//     no new connection is accepted, connections waiting for a backend are
//     closed, and open ones (keep-alive included) may finish until ctx ends;
//     then they are closed and Close returns once their goroutines have.
//
//   - Accept errors that a moment can cure (EMFILE, ENFILE, ECONNABORTED, …)
//     back off 5ms doubling to 1s, as net/http does, and are logged once per
//     burst; any other error ends Serve. Every message goes through a limiter
//     that passes one line per kind every few seconds with a count of the
//     rest, so a refusing backend does not cost a log line per connection.
//
// Backends see the runner's loopback address as the peer of every
// connection: the client's address is not passed on.
package proxy
