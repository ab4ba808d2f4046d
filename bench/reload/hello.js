// hello.js: the Node app of the reload benchmark, written the way pm2's
// cluster mode wants it: it calls server.listen(PORT) itself and knows
// nothing of clusterrun. Under clusterrun the Node preload maps that listen
// onto the shared socket and reports the instance ready; under pm2 the
// cluster module does the same.
//
// Knobs, read at start: BOOT_DELAY_MS=N waits N ms before listening (a slow
// release); BOOT_CRASH=1 exits 1 at once (a broken release).
'use strict';
const http = require('http');
const net = require('net');

if (process.env.BOOT_CRASH === '1') {
  console.error('crashing on boot (BOOT_CRASH=1)');
  process.exit(1);
}

const instance = Number(process.env.CLUSTERRUN_INSTANCE ?? process.env.NODE_APP_INSTANCE ?? -1);
const body = JSON.stringify({ lang: 'node', app: 'hello', instance, pid: process.pid }) + '\n';
let draining = false;

const server = http.createServer((req, res) => {
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (draining) headers.Connection = 'close';
  res.writeHead(200, headers);
  res.end(body);
});

// A graceful stop that loses no keep-alive request: stop accepting, answer
// every request from now on with Connection: close, and close connections
// that stay idle for a second. http.Server.close() would close idle
// keep-alive connections at once instead, racing clients that are sending
// their next request on one of them; net.Server's close leaves them be.
function stop() {
  if (draining) return;
  draining = true;
  net.Server.prototype.close.call(server, () => process.exit(0));
  setTimeout(() => server.closeIdleConnections(), 1000);
  setTimeout(() => process.exit(1), 10000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

setTimeout(() => {
  server.listen(Number(process.env.PORT || 8080), () => {
    console.log(`hello instance ${instance} pid ${process.pid} listening`);
  });
}, Number(process.env.BOOT_DELAY_MS || 0));
