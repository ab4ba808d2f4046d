// Package runner is clusterrun's supervisor: it starts the instances of
// every app on the listeners the runner holds, restarts them under their
// restart policy, replaces them one by one on a reload or a restart, and
// stops them gracefully on a drain.
//
// Two types do it. Machine is the supervisor as a state machine that never
// touches the world: every event (a process spawned or exited, an sd_notify
// message, a probe result, a timer, a user's command) goes through
// Machine.Handle, and the machine acts only through small seams (seams.go:
// processes, clock, prober, loader, sockets, log), so tests drive it with
// fakes and a fake clock (model_test.go). Runner runs a Machine for real:
// one goroutine owns it and feeds it every event from one channel, and the
// seams are real processes (exec.go), probes (probe.go), listeners and
// proxies (sockets.go) and timers (runner.go).
//
// The model has four levels, one file each, and a map of their states and
// transitions (states.go):
//
//   - instance.go: one process, from its start request to its exit
//     (spawning, starting, ready, dying, quiescing, stopping, killing),
//     with its readiness, health and stop. When the runner decides that a
//     process stops it records why (its intent: replaced, retired,
//     restarted in place, stopped, shut down, …), once.
//   - slot.go: one instance number of an app, its serving process and its
//     replacement, and what an exit means: a function of the process's
//     location, intent and state (gone).
//   - app.go: an app's slots, its instance count (with where the count
//     came from), and the commands that act on it.
//   - rollout.go: reloads, restarts and rollbacks, replacing slots a few
//     at a time; shutdown.go: the drain, the forced kill, the end.
//
// Following one instance from start to routable: app.go startApp and
// slot.go spawn ask Procs.Start for a process (exec.go starts it on its own
// goroutine and posts Spawned); instance.go onSpawned arms its ready check
// (armReady), and becameReady, on READY=1, a probe or a delay, makes it
// ready: setState publishes Routable, which sockets.go route hands to the
// proxies. Subscribers (metrics, the control API) receive every lifecycle
// event as a status.Lifecycle (Runner.Subscribe).
package runner
