package listeners

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
	"golang.org/x/sys/unix"
)

// Activation is the sockets clusterrun itself was started with by socket
// activation (a systemd .socket unit, systemd-socket-activate): fds 3, 4,
// … described by LISTEN_FDS and LISTEN_FDNAMES. Given to a Set (Adopt), a
// listener named like one of them, or written "systemd:NAME", takes that
// socket instead of binding its address, so the socket, and what waits in
// its queue, outlives a restart of clusterrun.
type Activation struct {
	socks []*inherited
}

// inherited is one socket of an Activation.
type inherited struct {
	fd   int
	name string
	// taken: a listener adopted it (the Set owns the fd from then on), or
	// it was closed as unclaimed.
	taken bool
}

// maxActivated bounds LISTEN_FDS: a number beyond it is a corrupt
// environment, not a socket unit.
const maxActivated = 4096

// activationVars describe clusterrun's own sockets. They are read once and
// removed from the environment: instances get their own.
var activationVars = []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}

// Activated reads LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, unsets them,
// and returns the sockets passed to this process, or nil when none were
// (LISTEN_PID names another process, as sd_listen_fds checks, or nothing
// was passed). The descriptors are made close-on-exec, so that no child
// inherits them except as its own listeners.
func Activated() (*Activation, error) {
	vals := map[string]string{}
	for _, k := range activationVars {
		vals[k] = os.Getenv(k)
		os.Unsetenv(k)
	}
	return activated(vals, os.Getpid())
}

func activated(vals map[string]string, pid int) (*Activation, error) {
	if vals["LISTEN_FDS"] == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(vals["LISTEN_PID"]); err != nil || p != pid {
		// Meant for another process (the environment of a parent that was
		// activated): its descriptors are not ours to touch.
		return nil, nil
	}
	n, err := strconv.Atoi(vals["LISTEN_FDS"])
	if err != nil || n < 0 || n > maxActivated {
		return nil, fmt.Errorf("cannot use the sockets passed by socket activation: LISTEN_FDS=%q is not a number of sockets", vals["LISTEN_FDS"])
	}
	if n == 0 {
		return nil, nil
	}
	names := strings.Split(vals["LISTEN_FDNAMES"], ":")
	if vals["LISTEN_FDNAMES"] == "" {
		// No names (systemd-socket-activate without --fdname): systemd's
		// default name, which no listener is called.
		names = nil
	}
	if names != nil && len(names) != n {
		return nil, fmt.Errorf("cannot use the sockets passed by socket activation: LISTEN_FDNAMES names %d sockets, LISTEN_FDS=%d", len(names), n)
	}
	a := &Activation{}
	for i := range n {
		in := &inherited{fd: 3 + i, name: "unknown"}
		if names != nil {
			in.name = names[i]
		}
		if err := closeOnExec(in.fd); err != nil {
			return nil, fmt.Errorf("cannot use socket %d (%s) passed by socket activation: %w", in.fd, in.name, err)
		}
		a.socks = append(a.socks, in)
	}
	return a, nil
}

// Names lists the names of the sockets, for messages.
func (a *Activation) Names() []string {
	var out []string
	for _, in := range a.socks {
		out = append(out, in.name)
	}
	return out
}

// claim returns the socket listener d takes, nil if none: the one named
// like d's "systemd:NAME" address, else the one named like d. A socket is
// taken once.
func (a *Activation) claim(d *hclconfig.Listener) *inherited {
	if a == nil {
		return nil
	}
	name := d.Name
	if d.Network == hclconfig.NetworkSystemd {
		name = d.Address
	}
	for _, in := range a.socks {
		if !in.taken && in.name == name {
			in.taken = true
			return in
		}
	}
	return nil
}

// Adopt gives s the sockets of a: Bind takes one for each listener that
// claims it instead of binding. Call it before the first Bind.
func (s *Set) Adopt(a *Activation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.activation = a
}

// DropUnclaimed closes the sockets of the Activation that no listener took,
// and says which: an unclaimed socket would only fill its queue with
// connections no one accepts.
func (s *Set) DropUnclaimed() (warnings []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activation == nil {
		return nil
	}
	for _, in := range s.activation.socks {
		if !in.taken {
			in.taken = true
			closeFD(in.fd)
			warnings = append(warnings, fmt.Sprintf("socket activation passed a socket named %q (fd %d) that no listener takes (a listener takes the socket named like it, or written \"systemd:NAME\"): closed", in.name, in.fd))
		}
	}
	return warnings
}

func closeOnExec(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	return err
}

func closeFD(fd int) { syscall.Close(fd) }

// AdoptedPublic returns the public listeners (proxy mode) whose socket came
// from socket activation. At a drain the runner stops accepting on them,
// so that connections wait in the socket's queue, which systemd keeps, for
// the next runner. On sockets the runner bound itself it goes on
// accepting (there a connection would wait for nobody).
func (s *Set) AdoptedPublic() []net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Listener
	for _, sk := range s.socks {
		if sk.adopted && sk.public != nil {
			out = append(out, sk.public)
		}
	}
	return out
}
