// Package control is the Unix socket through which `clusterrun status`,
// `reload`, `restart`, `scale`, `stop`, `start` and `logs` talk to a running
// `clusterrun up`.
//
// The socket lives in a 0700 directory owned by the user, has mode 0600,
// and the server also checks the peer's uid (SO_PEERCRED), so only the
// runner's owner (or root) can control it. Its name is derived from the
// absolute path of the config file, so a command finds the runner started
// with the same -f. The protocol is one JSON request line, answered by one
// JSON response line (or, for logs, a stream of JSON record lines).
package control
