// nodeclose: a Node app written the way most are (Express's and Node's own
// docs show this stop): listen(PORT), and on SIGTERM server.close() and exit
// once it calls back. Node's http.Server.close() also closes idle keep-alive
// connections at once, racing a client that is sending its next request on
// one of them; clusterrun's preload makes that close graceful.
'use strict';
const http = require('node:http');

const body = JSON.stringify({ lang: 'node', app: process.env.CLUSTERRUN_APP, instance: Number(process.env.CLUSTERRUN_INSTANCE), pid: process.pid }) + '\n';

function answer(res) {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// GET /held is answered only once the stop has begun: a response that a
// handler is still preparing when server.close() comes (a database call,
// say).
const held = [];

const server = http.createServer((req, res) => {
  if (req.url === '/held') {
    held.push(res);
    console.log(`nodeclose pid ${process.pid} holds a request`);
    return;
  }
  answer(res);
});
server.listen(Number(process.env.PORT || 8080), () => console.log(`nodeclose pid ${process.pid} listening`));

process.on('SIGTERM', () => {
  console.log(`nodeclose pid ${process.pid} got SIGTERM, closing`);
  server.close(() => process.exit(0));
  for (const res of held.splice(0)) answer(res);
});
