package runner

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Pipes grow until the budget is spent, then keep the kernel's default,
// and what a closed pipe gave back is used again.
func TestPipeBudget(t *testing.T) {
	const size = 256 << 10
	b := &pipeBudget{max: 3 * size}
	grow := func() (took, capacity int) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		took = b.grow(w, size)
		capacity, err = unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return took, capacity
	}
	for i := 0; i < 3; i++ {
		if took, c := grow(); took != size || c != size {
			t.Fatalf("pipe %d of 3 within the budget: took %d, capacity %d; want %d", i+1, took, c, size)
		}
	}
	if took, c := grow(); took != 0 || c == size {
		t.Fatalf("a pipe past the budget: took %d, capacity %d; want the kernel's default", took, c)
	}
	b.used.Add(-size)
	if took, c := grow(); took != size || c != size {
		t.Errorf("after a release: took %d, capacity %d; want %d", took, c, size)
	}
}
