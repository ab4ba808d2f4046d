package signals

import (
	"os"

	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"
)

// terminal is the runner's controlling terminal, held open from the start
// so that a hangup can be told from a plain `kill -HUP`: once the terminal
// has hung up (its window closed, its tmux session killed), every
// operation on a descriptor of it fails with EIO.
type terminal struct{ f *os.File }

// openTerminal opens the controlling terminal, or returns nil when there
// is none (a container, a service, nohup): then SIGHUP always reloads.
func openTerminal() *terminal {
	f, err := os.OpenFile("/dev/tty", os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	return &terminal{f: f}
}

func (t *terminal) hungUp() bool {
	if t == nil {
		return false
	}
	return !isatty.IsTerminal(t.f.Fd())
}

func (t *terminal) close() {
	if t != nil {
		t.f.Close()
	}
}
