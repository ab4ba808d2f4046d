// Package e2e holds the end-to-end tests: they build the clusterrun binary
// and the example apps, run them as a user would — real processes, real
// sockets on 127.0.0.1, real signals — and assert what a user would see.
// They run on Linux only: they read /proc and set limits with prlimit(2).
package e2e
