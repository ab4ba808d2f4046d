package route

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultReserve is the number of descriptors an FDBudget keeps for the
// rest of the process unless told otherwise.
const DefaultReserve = 256

// FDBudget is the share of the process's descriptors that its data paths
// (proxy and http listeners) may hold together: the soft RLIMIT_NOFILE,
// read again at most once a second so that a limit lowered or raised at run
// time (prlimit) applies, less a reserve for everything else (instances'
// pipes and sockets, the control socket, log files). A listener at the
// budget stops accepting until one of its connections ends, so starting an
// instance never fails for descriptors the data paths took.
type FDBudget struct {
	reserve atomic.Int64
	used    atomic.Int64
	// limit is the soft RLIMIT_NOFILE as last read, at readAt (nanotime);
	// mu serialises the reads.
	limit  atomic.Int64
	readAt atomic.Int64
	mu     sync.Mutex
}

// NewFDBudget returns a budget that leaves reserve descriptors to the rest
// of the process.
func NewFDBudget(reserve int) *FDBudget {
	b := &FDBudget{}
	b.SetReserve(reserve)
	return b
}

// SetReserve changes the reserve (the runner raises it as it runs more
// instances).
func (b *FDBudget) SetReserve(n int) { b.reserve.Store(int64(max(n, 0))) }

// Max returns how many descriptors the data paths may hold now.
func (b *FDBudget) Max() int { return int(b.allowed(Now())) }

// Used returns how many they hold.
func (b *FDBudget) Used() int { return int(b.used.Load()) }

func (b *FDBudget) allowed(now int64) int64 {
	if b.limit.Load() == 0 || now-b.readAt.Load() >= int64(time.Second) {
		b.mu.Lock()
		if b.limit.Load() == 0 || now-b.readAt.Load() >= int64(time.Second) {
			if lim, ok := softFileLimit(); ok {
				b.limit.Store(lim)
			} else if b.limit.Load() == 0 {
				b.limit.Store(1 << 20) // unknown: the budget is not the bound then
			}
			b.readAt.Store(now)
		}
		b.mu.Unlock()
	}
	return max(b.limit.Load()-b.reserve.Load(), 0)
}

// Take claims n descriptors at now (Now()), or reports false when that
// would go past the budget.
func (b *FDBudget) Take(n int64, now int64) bool {
	if b.used.Add(n) <= b.allowed(now) {
		return true
	}
	b.used.Add(-n)
	return false
}

// Give returns n descriptors.
func (b *FDBudget) Give(n int64) { b.used.Add(-n) }

// Now is the clock of leases and budgets: monotonic nanoseconds since the
// process started.
func Now() int64 { return int64(time.Since(epoch)) }

// At is t on the clock of Now, from t's monotonic reading: a data path that
// read time.Now() for a deadline gets Now's value without a second read.
func At(t time.Time) int64 { return int64(t.Sub(epoch)) }

var epoch = time.Now()

// Retryable reports whether an accept error is worth retrying after a
// backoff: the process or the system ran out of something (descriptors,
// memory), or one connection died in the queue. Any other error means the
// listener is gone.
func Retryable(err error) bool {
	for _, e := range [...]syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM,
		syscall.ETIMEDOUT, syscall.EINTR, syscall.EAGAIN,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
