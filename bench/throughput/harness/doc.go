// Package harness is what bench/throughput and bench/dataplane share: the
// targets that run N instances of a hello app on one port (no runner at
// all, clusterrun in each listener mode, pm2's cluster mode, Node's cluster
// module), a check that every instance answers, the load tools (wrk, or
// bench/loadgen), and the supervising process's CPU and PSS read from
// /proc.
//
// Every process a target starts is in its own process group with a
// parent-death signal, and Stop ends it: a benchmark that fails or is
// interrupted leaves nothing running. Every load run is bounded in time and
// in requests and targets 127.0.0.1 only.
package harness
