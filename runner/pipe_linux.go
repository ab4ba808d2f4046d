package runner

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity given to an instance's output pipes. With the
// default 64 KiB, an app printing as fast as it can blocks in write(2) each
// time the runner is a moment late, and both pay a wake-up per round;
// a larger pipe lets the runner take bigger batches. The kernel fills it
// on demand, so a quiet app costs nothing. CLUSTERRUN_PIPE_SIZE overrides
// it (0 keeps the kernel's default), for measuring.
var pipeSize = func() int {
	if v, err := strconv.Atoi(os.Getenv("CLUSTERRUN_PIPE_SIZE")); err == nil {
		return v
	}
	return 256 << 10
}()

// growPipe sets the capacity of the pipe w writes to. Failure (a system
// limit) leaves the kernel's default, which works, only slower.
func growPipe(w *os.File) {
	if pipeSize > 0 {
		unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	}
}
