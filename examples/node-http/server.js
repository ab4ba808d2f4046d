'use strict';
// node-http: clusterrun's Node example, a tiny HTTP server meant to run as N
// instances that share one listening socket. Plain Node, no npm packages.
//
// Under clusterrun it listens on the socket the runner bound, passed as fd 3
// (systemd socket activation: LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID). Run by
// hand, or under pm2 for the benchmark, it listens on $PORT (default 8080).
// Node cannot send unix datagrams, so it does not sd_notify itself: the
// runner's Node preload reports it ready when it listens. (An unmodified app
// that calls listen(PORT) works too: see bench/reload/hello.js.)
// examples/go-http and examples/python-http
// behave exactly the same; the end-to-end tests and the benchmark rely on it:
//
//   GET /            200 {"lang":"node","app":"web","instance":2,"pid":1234}
//   GET /slow?ms=N   the same after N ms (0..60000), to test graceful stops
//   GET /healthz     200 ok
//
// Test knobs read at start: BOOT_DELAY_MS=N waits N ms before listening;
// BOOT_CRASH=1 exits 1 at once.
//
// On SIGTERM or SIGINT it stops accepting, lets in-flight requests finish
// (for at most 10s) and exits 0.

const http = require('node:http');
const net = require('node:net');

const DRAIN_TIMEOUT_MS = 10000; // bound on waiting for in-flight requests
const MAX_SLOW_MS = 60000; // largest wait /slow accepts

if (process.env.BOOT_CRASH === '1') {
  console.error('crashing on boot (BOOT_CRASH=1)');
  process.exit(1);
}

// parseUint accepts 1 to 10 ASCII digits and a value up to max, else returns
// null; the Go and Python examples apply the same rule.
function parseUint(s, max) {
  if (typeof s !== 'string' || !/^[0-9]{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n <= max ? n : null;
}

const instanceIndex = parseUint(process.env.CLUSTERRUN_INSTANCE, 2 ** 30);
const instance = instanceIndex === null ? -1 : instanceIndex; // -1: not started by clusterrun
const who = `node-http instance ${instance} pid ${process.pid}`;

let bootDelay = 0;
if (process.env.BOOT_DELAY_MS) {
  bootDelay = parseUint(process.env.BOOT_DELAY_MS, 2 ** 30);
  if (bootDelay === null) {
    console.error(`${who}: BOOT_DELAY_MS must be a number of milliseconds, not ${JSON.stringify(process.env.BOOT_DELAY_MS)}`);
    process.exit(1);
  }
}

// The answer never changes, so encode it once.
const body = Buffer.from(JSON.stringify({
  lang: 'node',
  app: process.env.CLUSTERRUN_APP || '',
  instance,
  pid: process.pid,
}) + '\n');

// IDLE_GRACE_MS is how long a stop leaves idle keep-alive connections open for
// their next request, which gets an answer and Connection: close.
const IDLE_GRACE_MS = 1000;

let draining = false; // set by the first SIGTERM/SIGINT
let bootTimer = null; // pending start while BOOT_DELAY_MS runs

function send(req, res, status, type, data, headers = {}) {
  // Once draining, close each connection after its response, so keep-alive
  // clients do not hold the process open.
  if (draining) headers.Connection = 'close';
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': data.length, ...headers });
  res.end(req.method === 'HEAD' ? undefined : data);
}

function text(s) {
  return Buffer.from(s + '\n');
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const route = ['/', '/slow', '/healthz'].includes(url.pathname);
  if (!route) {
    return send(req, res, 404, 'text/plain; charset=utf-8', text('404 page not found'));
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(req, res, 405, 'text/plain; charset=utf-8', text('Method Not Allowed'), { Allow: 'GET, HEAD' });
  }
  switch (url.pathname) {
    case '/':
      return send(req, res, 200, 'application/json', body);
    case '/healthz':
      return send(req, res, 200, 'text/plain; charset=utf-8', text('ok'));
    case '/slow': {
      const ms = parseUint(url.searchParams.get('ms'), MAX_SLOW_MS);
      if (ms === null) {
        return send(req, res, 400, 'text/plain; charset=utf-8', text('ms must be an integer from 0 to 60000'));
      }
      const timer = setTimeout(() => send(req, res, 200, 'application/json', body), ms);
      res.on('close', () => clearTimeout(timer)); // the client went away
      return undefined;
    }
  }
});

server.on('error', (err) => {
  console.error(`${who}: ${err.message}`);
  process.exit(1);
});

// Under clusterrun, LISTEN_PID is this process's pid (the sd_listen_fds
// rule): a LISTEN_FDS meant for some parent process is never taken.
// Note that listen({fd: 3}) calls listen(2) again on the shared socket, so
// Node's backlog (511 unless a backlog option is given) replaces the runner's
// for every instance holding it.
function listenOptions() {
  if (process.env.LISTEN_FDS && process.env.LISTEN_PID === String(process.pid)) {
    const name = (process.env.LISTEN_FDNAMES || '').split(':')[0] || 'unknown';
    for (const v of ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID']) delete process.env[v];
    return [{ fd: 3 }, `fd 3 (${name})`];
  }
  const port = process.env.PORT || '8080';
  return [{ port: Number(port) }, `port ${port}`];
}

function start() {
  bootTimer = null;
  const [options, where] = listenOptions();
  server.listen(options, () => console.log(`${who} listening on ${where}`));
}

bootTimer = setTimeout(start, bootDelay);

function stop(signal) {
  if (draining) return;
  draining = true;
  if (bootTimer) {
    console.log(`${who} got ${signal} while booting, exiting`);
    process.exit(0);
  }
  console.log(`${who} got ${signal}, draining`);
  // Stop accepting (closing only this process's copy of the shared socket)
  // and call back once every connection has ended. net.Server's close, not
  // http.Server's: that one also closes idle keep-alive connections at once,
  // racing a client that is sending its next request on one of them.
  net.Server.prototype.close.call(server, () => process.exit(0));
  // Every response now says Connection: close and ends its connection; one
  // that sends nothing more within the grace period is closed then.
  setTimeout(() => server.closeIdleConnections(), IDLE_GRACE_MS);
  setTimeout(() => {
    console.error(`${who}: in-flight requests did not finish within ${DRAIN_TIMEOUT_MS}ms`);
    process.exit(1);
  }, DRAIN_TIMEOUT_MS).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
