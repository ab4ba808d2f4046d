// A socket.io server as its docs write one: it listens on $PORT (the Node
// preload maps that onto the instance's socket), answers every "msg" with
// an ack naming its pid, and on SIGTERM closes socket.io, which tells every
// client its session ended, and exits. Long polling only, so that every
// message is an HTTP request that must reach the process holding the
// session. Errors engine.io answers (400 "Session ID unknown" to a request
// that reached the wrong process) are printed, so the test sees them.
const http = require("http");
const { Server } = require("socket.io");

const srv = http.createServer();
const io = new Server(srv, { transports: ["polling"], pingInterval: 2000, pingTimeout: 5000 });
// When SIGTERM came (0: not yet), so that an error says whether the request
// reached the process before or after its stop began.
let termAt = 0;
io.engine.on("connection_error", (err) => {
  const r = err.req || {};
  const since = termAt ? `${Date.now() - termAt}ms after SIGTERM` : "before SIGTERM";
  console.error(`connection_error ${err.code} ${err.message} pid ${process.pid}: ${r.method} ${r.url} ${since}`);
});
io.on("connection", (socket) => {
  socket.on("msg", (n, ack) => ack({ n, pid: process.pid }));
});
srv.listen(Number(process.env.PORT), () => console.log(`socket.io pid ${process.pid} listening`));
process.on("SIGTERM", () => {
  termAt = Date.now();
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
});
