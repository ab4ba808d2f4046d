// A Node HTTP server in the shape of pm2's own cluster samples: the port is
// written in the code, not passed in.
const http = require("http");
http.createServer((req, res) => res.end("hello\n")).listen(8000);
