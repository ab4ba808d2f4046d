// limit.js: preloaded into bench/reload/hello.js (node --require) for the
// "limit" target of the throughput benchmarks, where no runner exists: the
// benchmark binds one socket and starts N copies of the app with it as fd 3
// (LISTEN_FDS=1). The app calls server.listen(PORT); this maps that call onto
// listen({fd: 3}), the same mapping clusterrun's own Node preload makes, so
// the limit runs the very same app code as every other target.
'use strict';
const net = require('net');

if (process.env.LISTEN_FDS !== '1') {
  throw new Error('limit.js: expected LISTEN_FDS=1 (started by bench/throughput)');
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function limitListen(...args) {
  const a = args[0];
  if (typeof a === 'number' || (typeof a === 'string' && /^[0-9]+$/.test(a))) {
    const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    return cb ? listen.call(this, { fd: 3 }, cb) : listen.call(this, { fd: 3 });
  }
  return listen.apply(this, args);
};
