package runner

import (
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity given to an instance's output pipes. With the
// default 64 KiB, an app printing as fast as it can blocks in write(2) each
// time the runner is a moment late, and both pay a wake-up per round; a
// 256 KiB pipe lets the runner take bigger batches (bench/logpath: wall
// time 1.07–1.23 × the app writing to a file, against 1.27–1.48 × with the
// default). CLUSTERRUN_PIPE_SIZE overrides it (0 keeps the kernel's
// default), for measuring.
var pipeSize = func() int {
	if v, err := strconv.Atoi(os.Getenv("CLUSTERRUN_PIPE_SIZE")); err == nil {
		return v
	}
	return 256 << 10
}()

// The kernel charges a pipe's whole capacity to its user at once, and once
// an unprivileged user's pipes pass fs.pipe-user-pages-soft (64 MiB by
// default), every new pipe of that user, the apps' own included, gets
// 8 KiB. So the runner grows pipes only within a quarter of that: the
// first 32 instances' worth; the rest keep the default.
const maxGrownPipes = 16 << 20

// pipeBudget counts the capacity the runner's grown pipes hold.
type pipeBudget struct {
	max  int64
	used atomic.Int64
}

var grownPipes = pipeBudget{max: maxGrownPipes}

// growPipe sets the capacity of the pipe w writes to, within the budget,
// and returns what it took from the budget, for releasePipe once the pipe
// is closed. Failure (a system limit) leaves the kernel's default, which
// works, only slower.
func growPipe(w *os.File) int { return grownPipes.grow(w, pipeSize) }

// releasePipe gives back what growPipe took.
func releasePipe(n int) { grownPipes.used.Add(-int64(n)) }

func (b *pipeBudget) grow(w *os.File, size int) int {
	n := int64(size)
	if n <= 0 {
		return 0
	}
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return 0
	}
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, size); err != nil {
		b.used.Add(-n)
		return 0
	}
	return size
}
