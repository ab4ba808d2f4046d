// Socket.io clients forced to long polling: each connects to URL from its
// own loopback address (127.0.0.10, .11, …, so that ip-hash sees distinct
// clients) over keep-alive connections, as a browser would, sends MSGS
// messages one after another, each waiting for its ack, and the script
// prints one JSON line: the acks, the pids that answered each client, and
// every error and disconnect with its HTTP status and body.
//
//   node client.js URL CLIENTS MSGS [GAP_MS]
const http = require("http");
const { io } = require("socket.io-client");

const [url, clients, msgs, gap] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5] || 0)];
const out = { acks: 0, pids: [], errors: [], disconnects: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function detail(d) {
  if (!d) return "";
  const ctx = d.context || {};
  return ` status=${d.description} body=${JSON.stringify(ctx.responseText || "")}`;
}

async function run(i) {
  const agent = new http.Agent({ keepAlive: true, localAddress: `127.0.0.${10 + i}` });
  const s = io(url, {
    transports: ["polling"], forceNew: true, withCredentials: true, agent,
    reconnectionDelay: 50, reconnectionDelayMax: 200,
  });
  const pids = new Set();
  s.on("connect_error", (e) => out.errors.push(`client ${i} connect_error: ${e.message}${detail(e)}`));
  s.on("disconnect", (reason, d) => out.disconnects.push(`client ${i}: ${reason}${detail(d)}`));
  for (let n = 0; n < msgs; n++) {
    for (;;) {
      try {
        const r = await s.timeout(10000).emitWithAck("msg", n);
        if (r.n !== n) out.errors.push(`client ${i}: ack ${r.n} for message ${n}`);
        pids.add(r.pid);
        out.acks++;
        break;
      } catch (e) {
        // No ack in time (the session ended under it): sent again.
        out.errors.push(`client ${i}: message ${n}: ${e.message}`);
      }
    }
    if (gap) await sleep(gap);
  }
  s.close();
  agent.destroy();
  out.pids.push([...pids]);
}

Promise.all([...Array(clients).keys()].map(run)).then(() => {
  console.log(JSON.stringify(out));
  process.exit(0);
});
setTimeout(() => {
  console.log(JSON.stringify({ ...out, errors: [...out.errors, "timed out"] }));
  process.exit(1);
}, 120000).unref();
