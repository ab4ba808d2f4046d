// cluster.js: Node's own cluster module as the runner, for the throughput
// benchmarks: `node cluster.js APP.js N` forks N workers running APP.js,
// which calls server.listen(PORT) as usual. The primary process is the
// supervisor the benchmark measures.
//
// NODE_CLUSTER_SCHED_POLICY picks how connections reach the workers, as in
// Node itself: "rr" (the default on Linux) makes the primary accept every
// connection and pass it to the workers in turn; "none" hands the listening
// socket to the workers, which accept on it themselves.
//
// Prints "cluster: N workers listening" once every worker listens; exits 1
// if a worker dies before a stop; SIGTERM/SIGINT stop the workers and exit.
'use strict';
const cluster = require('cluster');

const [script, count] = [process.argv[2], Number(process.argv[3])];
if (!script || !Number.isInteger(count) || count < 1) {
  console.error('usage: node cluster.js APP.js N');
  process.exit(2);
}
const none = process.env.NODE_CLUSTER_SCHED_POLICY === 'none';
// Must be set before the first fork.
cluster.schedulingPolicy = none ? cluster.SCHED_NONE : cluster.SCHED_RR;
cluster.setupPrimary({ exec: script });

let listening = 0;
let stopping = false;
let exitCode = 0;
cluster.on('listening', () => {
  if (++listening === count) {
    console.log(`cluster: ${count} workers listening (${none ? 'SCHED_NONE' : 'SCHED_RR'}, primary pid ${process.pid})`);
  }
});
cluster.on('exit', (worker, code, signal) => {
  if (!stopping) {
    console.error(`cluster: worker pid ${worker.process.pid} died (${signal || code}); giving up`);
    stop(1);
  } else if (Object.keys(cluster.workers).length === 0) {
    process.exit(exitCode);
  }
});
for (let i = 0; i < count; i++) cluster.fork({ NODE_APP_INSTANCE: String(i) });

function stop(code) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  if (Object.keys(cluster.workers).length === 0) process.exit(code);
  setTimeout(() => process.exit(code), 5000).unref();
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
