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
      const opts = { fd: fdByPort.get(port) };
      return cb ? listen.call(this, opts, cb) : listen.call(this, opts);
    }
    const a = args[0];
    if (a && typeof a === 'object' && ours.has(a.fd)) {
      this.once('listening', announce); // listen({fd: 3}) written by hand
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
