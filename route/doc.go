// Package route is the routable set that the runner's data paths share:
// listener mode "proxy" (package proxy, which forwards connections) and mode
// "http" (package httpmode, which forwards requests). It knows which
// instances may be picked, how loaded each one is, who waits for one, and
// when a removed one has gone quiet; it never moves a byte.
//
//	t := route.New(route.Options{Balance: route.LeastLoad})
//	t.SetBackends(ready)           // from the supervisor, whenever readiness changes
//	b := t.Pick(key, tried)        // a data path, per connection or request
//	t.Acquire(b, &lease, now, key) // … forwarded, answered …
//	t.Release(&lease)
//	<-t.Quiesce(id, idle)          // the runner, before a stop signal
//
// The rules it keeps, and why:
//
//   - The supervisor decides, the data path routes. The routable set is an
//     immutable snapshot that SetBackends swaps with one atomic store, so a
//     pick never waits on the supervisor's goroutine or a lock it holds,
//     and SetBackends never waits on traffic. Each target's load is an
//     atomic counter on an object that survives the swaps while the target
//     stays in the set.
//
//   - A lease is one hold on a target: a connection spliced through (proxy
//     mode) or one request in flight (http mode). Least-load compares
//     leases, so it is least-connections in one mode and least outstanding
//     requests in the other. A lease counts from the pick, dial included,
//     so a burst does not all pick the same idle target before any dial
//     completes. Every pick starts its scan at a rotating offset: equal
//     targets take turns instead of the first in the list taking every
//     short connection. Round-robin uses the same rotation and ignores the
//     load.
//
//   - An instance stops getting new leases before it gets its stop signal.
//     SetBackends marks the targets it drops as removed before it returns;
//     a data path checks the mark after a dial completes.
//
//   - An instance is stopped once quiet. Quiesce(id, idle) tells the runner
//     when every lease of a removed target has ended or been idle for idle,
//     so the stop signal does not cut a response off mid-body or reset a
//     connection still in the instance's accept queue. A held lease (an
//     upgraded HTTP connection) is busy until it ends.
//
//   - Waiting happens in the runner, first come first served (WaitQueue),
//     not in a full listen backlog.
package route
