// Package logmux merges the stdout and stderr pipes of every instance, plus the
// runner's own messages, into one stream:
//
//	web.0      | listening on :8080
//	web.1      ! warning: cache cold
//	web.1+     | listening on :8080
//	clusterrun | web.1 exited with status 1
//
// It is the hot path of clusterrun: every line every app prints goes through
// it. The rules it keeps, and why:
//
//   - A line is never split or interleaved with another. After each read
//     from a pipe, every complete line that the read brought is formatted
//     into one buffer and handed to the output in one Write under one mutex
//     (hivemind output.go does it per line). A busy app thus costs one
//     write(2) per read instead of one per line, and a terminal or a log
//     shipper never sees half a line. Lines are never held back for a
//     fuller batch: whatever one read brought is written before the next
//     read, with no timer, so a quiet app's line goes out at once.
//   - A child never blocks on its pipe because of us. Lines are split with
//     our own buffers instead of bufio.Scanner, whose 64 KiB token limit
//     stops the reader and then wedges the child in write(2). An over-long
//     line is emitted in marked pieces of MaxLine bytes instead of being
//     held in memory; write errors on our own stdout (EPIPE) are ignored so
//     that the pipes keep draining.
//   - An idle pipe costs little memory. Each source reads into a small
//     buffer of its own (4 KiB), and borrows a 64 KiB one, enough to drain
//     a full pipe in one read, from a pool only while reads keep filling its
//     buffer; the formatted batch is a pooled buffer too.
//   - A silent writer does not hold up the others: every source has its own
//     reading goroutine and only the final Write is shared.
//   - Color is decided once by main and passed in Options; fatih/color's
//     global NoColor is never consulted, and prefixes are built once per
//     (app, instance, tag, width), not per line. A source notices a new
//     Declare or Tag with one atomic load per batch, without a lock.
//   - While a slot is replaced, its processes are told apart by a Tag after
//     the label ("web.1+" starting, "web.1-" draining); the label column
//     keeps room for it so that the columns do not move.
//   - The most recent lines are kept for `clusterrun logs -n` (Tail), within
//     a line and a byte bound, in chunked rings that grow with use and then
//     stop allocating. They are added under the output mutex, so the
//     history, the output and the subscribers agree on the order, and a
//     Tail joins history and live records without a gap.
//
// Children write into a pipe, not a tty, so libc and Python stdio switch to
// block buffering and many apps drop their own colors. That is accepted for
// now; a pty per process would fix it at the cost of a dependency.
package logmux
