// Package e2e holds the end-to-end tests: they build the clusterrun binary
// and the example apps, run them as a user would — real processes, real
// sockets on 127.0.0.1, real signals — and assert what a user would see.
package e2e
