// Package httpmode is the data path of listener mode "http": the runner
// reads each HTTP/1.1 request from its clients and forwards it to a ready
// instance over keep-alive connections it keeps per instance, on the
// instance's private address (as proxy mode's), then writes the answer
// back.
//
//	s := httpmode.New(ln, httpmode.Options{StickyCookie: "srv", Logf: logf})
//	go s.Serve()
//	s.SetBackends(ready)   // from the supervisor, whenever readiness changes
//	<-s.Quiesce(id, idle)  // before an instance's stop signal
//	s.Stopping(id); s.Forget(id)
//	s.Close(ctx)           // at shutdown
//
// The routable set, the balance policies, the leases (one per request in
// flight), the wait queue and Quiesce are package route's, shared with
// proxy mode; this package owns HTTP: reading, framing and forwarding.
//
// The rules it keeps, and why:
//
//   - A client's connection is the runner's. It outlives reloads, restarts
//     and crashes of instances: each request picks a routable instance
//     anew. An instance that leaves the set gets no new request (its idle
//     pooled connections are closed at once, so an app that waits for its
//     connections before it exits is not held up), finishes the ones it
//     has, and Quiesce says when none is outstanding: only then does the
//     runner send its stop signal. Apps that die on SIGTERM or speak
//     HTTP/1.0 reload without a failed request.
//
//   - A failure that hides nothing is retried. A request the instance never
//     got (connect refused, a pooled connection it had closed, which a
//     non-blocking peek finds before the write) goes to another instance,
//     whatever its method. One that may have reached it (the connection
//     died before any byte of an answer: a crash) goes once more, to
//     another instance, only when it is idempotent (GET, HEAD, OPTIONS,
//     PUT, DELETE, TRACE) and its body was held whole (MaxRetryBody); a
//     kill -9 under GET load fails nothing. Nothing is retried after a byte
//     of the answer came back, and nothing after the time out (504). Such
//     a request skips the peek on a connection idle for under 100 ms: apps
//     close idle connections after seconds, and if one did, the request
//     goes again all the same.
//
//   - What an instance reads is a head the runner wrote. The request line
//     and fields are parsed in place, strictly where a lenient reading could
//     be read two ways (request smuggling: one Content-Length, chunked
//     alone and never beside a length, no space before a colon, no folded
//     lines, no bare CR, whole %-escapes); the head that goes on is
//     rebuilt with CRLF, the hop-by-hop fields (Connection and those it
//     names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
//     Proxy-Authorization) dropped, Host kept, and X-Forwarded-For,
//     -Proto, -Host and Forwarded appended to (the client's own kept only
//     from TrustedProxies). A chunked body is decoded and sent with framing
//     of the runner's own; a small one goes on with a length. A malformed
//     request gets 400 and is never forwarded. The parser is fuzzed
//     against net/http's, the chunked decoder against httputil's.
//
//   - Sticky sessions hold while the session does. A client stuck to an
//     instance (its cookie, or its address under ip-hash) reaches that
//     process while it is routable and while it drains after a reload,
//     since its session lives there; from the stop signal until a second
//     after the process is gone it gets 503, never another process, which
//     would not know the session (socket.io answers that with 400 "Session
//     ID unknown"); then its next request goes to a live instance and
//     sticks there. Such a request is never retried elsewhere.
//
//   - An upgraded connection (101: WebSocket) is copied raw both ways and
//     holds its lease: the instance is not stopped under it before its stop
//     timeout.
//
//   - Nothing is allocated per request. Each client connection is served
//     by a worker goroutine that keeps its buffers and its grown stack for
//     the next connection; the request, its head's field offsets and the
//     answer's are reused. Deadlines are set with 100 ms of slack and only
//     when the one in place is off by more, so a keep-alive request changes
//     no runtime timer; a timeout fires at most that late, never early. A
//     new connection gets a deadline only when a read or write would wait:
//     its first head usually comes with it (TCP_DEFER_ACCEPT) and its
//     answer fits in the socket, so a connection per request sets none.
//     On Linux a TCP client is accepted as a bare descriptor, read and
//     written with plain syscalls, and made a net.Conn (on the runtime's
//     poller) only when it first has to wait: a connection per request
//     then costs no getsockname, setsockopt, epoll_ctl or finalizer.
//
//   - Limits: MaxHeaderSize (431), HeaderTimeout from a head's first byte
//     (408: slowloris), IdleTimeout between requests and for a client to
//     take an answer, Timeout for an instance's answer to begin (504),
//     MaxConnections, and per instance MaxPerInstance requests in flight
//     (the others wait, first come first served, up to QueueTimeout: 503).
//
//   - Figures: per instance slot, requests by status class and a latency
//     histogram (the metrics endpoint); per process, its last minute's rate
//     and p50/p99 (status, top). The access log formats a line into its
//     instance's buffer; a goroutine hands the buffers to the log in
//     batches, and drops (and counts) what a slow log cannot take.
package httpmode
