// Package logmux merges the stdout and stderr pipes of every instance, plus the
// runner's own messages, into the one stream described in SPEC §7:
//
//	web.0      | listening on :8080
//	web.1      ! warning: cache cold
//	clusterrun | web.1 exited with status 1
//
// It is the hot path of clusterrun: every line every app prints goes through
// it. The rules it keeps, and why:
//
//   - A line is never interleaved with another. Each line is formatted whole
//     and handed to the output in exactly one Write under one mutex (hivemind
//     output.go), so a terminal or a log shipper never sees half a line.
//   - A child never blocks on its pipe because of us. Lines are split with a
//     fixed buffer instead of bufio.Scanner, whose 64 KiB token limit stops
//     the reader and then wedges the child in write(2). An over-long line is
//     emitted in marked pieces instead of being held in memory; write errors
//     on our own stdout (EPIPE) are ignored so that the pipes keep draining.
//   - A silent writer does not hold up the others: every source has its own
//     reading goroutine and only the final Write is shared.
//   - Color is decided once by main and passed in Options; fatih/color's
//     global NoColor is never consulted, and prefixes are built once per
//     (app, instance, width), not per line.
//
// Children write into a pipe, not a tty, so libc and Python stdio switch to
// block buffering and many apps drop their own colors. That is accepted for
// now; a pty per process would fix it at the cost of a dependency.
package logmux
