// clusterrun's preload for Node (loaded with NODE_OPTIONS=--require): it lets
// an unmodified app that calls server.listen(PORT) share the socket the
// runner bound, as pm2's cluster mode does, and tells the runner the
// instance is ready once it listens.
//
// It does nothing unless LISTEN_PID is this process's pid (the systemd rule),
// so Node processes the app starts itself are left alone.
'use strict';
(function clusterrunPreload() {
  const env = process.env;
  if (env.LISTEN_PID !== String(process.pid)) return;

  const net = require('net');
  const fs = require('fs');

  // CLUSTERRUN_LISTEN_PORTS is "PORT=FD,PORT=FD": which inherited fd
  // listens on which TCP port.
  const fdByPort = new Map();
  const ours = new Set();
  for (const pair of (env.CLUSTERRUN_LISTEN_PORTS || '').split(',')) {
    const [port, fd] = pair.split('=').map(Number);
    if (Number.isInteger(port) && Number.isInteger(fd)) {
      fdByPort.set(port, fd);
      ours.add(fd);
    }
  }
  const readyFd = Number(env.CLUSTERRUN_READY_FD);
  let announced = false;

  function announce() {
    if (announced || !Number.isInteger(readyFd)) return;
    announced = true;
    try {
      fs.writeSync(readyFd, 'READY=1\n');
    } catch (e) {
      // The runner went away or the app closed the fd: nothing to tell.
    }
  }

  // portOf returns the TCP port a listen() call asks for, or undefined for a
  // call that names a path, a handle or an fd.
  function portOf(args) {
    const a = args[0];
    if (typeof a === 'number') return a;
    if (typeof a === 'string' && /^[0-9]+$/.test(a)) return Number(a);
    if (a && typeof a === 'object' && a.port !== undefined && a.fd === undefined &&
        a.path === undefined && a.handle === undefined && a._handle === undefined) {
      return Number(a.port);
    }
    return undefined;
  }

  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function clusterrunListen(...args) {
    const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    const port = portOf(args);
    if (port !== undefined && fdByPort.has(port)) {
      this.once('listening', announce);
      gracefulClose(this);
      const opts = { fd: fdByPort.get(port) };
      return cb ? listen.call(this, opts, cb) : listen.call(this, opts);
    }
    const a = args[0];
    if (a && typeof a === 'object' && ours.has(a.fd)) {
      this.once('listening', announce); // listen({fd: 3}) written by hand
      gracefulClose(this);
    } else if (port !== undefined && port !== 0 && fdByPort.size > 0) {
      // A port none of the app's listeners has: the first instance may
      // bind it, the others cannot. Rather than a crash loop on
      // EADDRINUSE, say once what is wrong and stop for good.
      this.once('error', (err) => {
        if (err && err.code === 'EADDRINUSE') fatal(port);
      });
    }
    return listen.apply(this, args);
  };

  // drainingServers are the HTTP servers whose close() has begun. Every
  // response of theirs whose head is written from then on says
  // Connection: close: the one a handler is still preparing when close()
  // comes, one queued behind it on a pipelined connection, the answer to a
  // request read later. writeHead is where Node writes every head (an
  // implicit one too), and it is hooked only when the first server drains,
  // so an app pays nothing per request before that. Tracking each open
  // response from its 'request' event instead cost a hello-world app about
  // 1 µs per request, 6-8% of its throughput.
  const drainingServers = new Set();
  let writeHeadHooked = false;

  function hookWriteHead() {
    if (writeHeadHooked) return;
    writeHeadHooked = true;
    const proto = require('http').ServerResponse.prototype;
    const writeHead = proto.writeHead;
    proto.writeHead = function clusterrunWriteHead(...args) {
      // socket.server is the server that accepted it (TLS sockets too).
      const socket = this.req && this.req.socket;
      if (socket && drainingServers.has(socket.server) && !this.headersSent) {
        this.setHeader('Connection', 'close');
      }
      return writeHead.apply(this, args);
    };
  }

  // IDLE_GRACE_MS is how long a draining HTTP server leaves its idle
  // keep-alive connections open for one more request, answered with
  // Connection: close.
  const IDLE_GRACE_MS = 1000;

  // gracefulClose makes close() of an HTTP server on one of the runner's
  // sockets lose no keep-alive request. Node's http.Server.close() stops
  // accepting and also closes every idle keep-alive connection at once,
  // which races a client that is sending its next request on one: it
  // reads an EOF or a reset (about one failed request per open connection
  // per reload). Here close() stops accepting (this process's copy of the
  // socket only), every response from then on says Connection: close and
  // ends its connection, and what is still idle after the grace is closed
  // then, as Node would have at once. Callbacks and the 'close' event are
  // Node's own: they come once every connection has ended. Other servers,
  // and closeAllConnections(), are left as they are.
  function gracefulClose(server) {
    if (typeof server.closeIdleConnections !== 'function' || server.close !== Object.getPrototypeOf(server).close) {
      return; // not an HTTP server, or one whose close() is already its own
    }
    const closeIdle = server.closeIdleConnections;
    let draining = false;
    let graceOver = false;

    server.close = function clusterrunGracefulClose(...args) {
      if (draining) return net.Server.prototype.close.apply(this, args);
      draining = true;
      drainingServers.add(server);
      hookWriteHead();
      server.once('close', () => drainingServers.delete(server));
      net.Server.prototype.close.apply(this, args);
      // unref: the open connections keep the process alive, these timers
      // must not once they have ended.
      setTimeout(() => {
        graceOver = true;
        closeIdle.call(server);
        // A response that was already under way with keep-alive leaves
        // its connection idle later on: close those as they come.
        const sweep = setInterval(() => closeIdle.call(server), 100);
        sweep.unref();
        server.once('close', () => clearInterval(sweep));
      }, IDLE_GRACE_MS).unref();
      return this;
    };

    // A framework may close idle connections itself right after close()
    // (Fastify does): inside the grace, that waits for the grace's end.
    server.closeIdleConnections = function clusterrunCloseIdle() {
      if (!draining || graceOver) closeIdle.call(server);
    };
  }

  function fatal(port) {
    const known = [...fdByPort.keys()].join(', ');
    const line = 'listen(' + port + ') matches none of this app\'s listeners (port ' + known +
      '); listen on one of them, or add a listener for ' + port + ' to cluster.hcl';
    try {
      fs.writeSync(readyFd, 'CLUSTERRUN_FATAL=' + line + '\n');
    } catch (e) {
      // No runner to tell: the message below is all there is.
    }
    process.stderr.write('clusterrun: ' + line + '\n');
    process.exit(1);
  }
})();
