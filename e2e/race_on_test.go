//go:build linux && race

package e2e

// raceBuild: the suite runs under the race detector, so the binary under
// test is built with it too, and the supervisor's goroutines are checked
// while real processes, sockets and signals drive them.
const raceBuild = true
