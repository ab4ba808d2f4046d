// Package control is the runner's HTTP API (docs/api.md): `clusterrun
// status`, `reload`, `restart`, `scale`, `stop`, `start`, `logs`, `ls` and
// `top` are its clients, and so can be curl or any tool.
//
// Every runner serves it on a Unix socket in a 0700 directory owned by the
// user, with mode 0600, and checks each connection's peer uid
// (SO_PEERCRED), so only the runner's owner (or root) can use it. The
// socket's name is derived from the absolute path of the config file, so a
// command finds the runner started with the same -f. With a control block
// it also serves the API over TCP, where every request needs a bearer
// token: the full one, or the read-only one that allows GET only.
//
// The API is HTTP/1.1 with JSON under /v1/: commands answer one JSON
// object, /v1/logs streams JSON lines (logmux's record schema) and
// /v1/events streams Server-Sent Events. Streams ("followers") and
// commands do not share a budget: followers have their own cap and are
// refused past it with a JSON error, while commands always find room.
package control
