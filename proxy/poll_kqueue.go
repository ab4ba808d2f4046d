//go:build darwin || freebsd

package proxy

import (
	"golang.org/x/sys/unix"
)

// poller is the loop's readiness source: kqueue. Connection sockets get a
// read and a write filter, both EV_CLEAR (edge-triggered, as the epoll
// poller's), for their whole life; the listener a level read filter; an
// EVFILT_USER event wakes the loop for commands.
type poller struct {
	kq  int
	raw []unix.Kevent_t
}

// wakeIdent is the EVFILT_USER event's ident; it is reported as fd -1.
const wakeIdent = 1

func newPoller() (*poller, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(kq)
	p := &poller{kq: kq, raw: make([]unix.Kevent_t, maxEvents)}
	ev := unix.Kevent_t{Ident: wakeIdent, Filter: unix.EVFILT_USER, Flags: unix.EV_ADD | unix.EV_CLEAR}
	if _, err := unix.Kevent(kq, []unix.Kevent_t{ev}, nil, nil); err != nil {
		unix.Close(kq)
		return nil, err
	}
	return p, nil
}

func (p *poller) change(evs ...unix.Kevent_t) error {
	_, err := unix.Kevent(p.kq, evs, nil, nil)
	return err
}

func (p *poller) addConn(fd int) error {
	var r, w unix.Kevent_t
	unix.SetKevent(&r, fd, unix.EVFILT_READ, unix.EV_ADD|unix.EV_CLEAR)
	unix.SetKevent(&w, fd, unix.EVFILT_WRITE, unix.EV_ADD|unix.EV_CLEAR)
	return p.change(r, w)
}

func (p *poller) addListener(fd int, shared bool) error {
	var r unix.Kevent_t
	unix.SetKevent(&r, fd, unix.EVFILT_READ, unix.EV_ADD)
	return p.change(r)
}

func (p *poller) delListener(fd int) error {
	var r unix.Kevent_t
	unix.SetKevent(&r, fd, unix.EVFILT_READ, unix.EV_DELETE)
	return p.change(r)
}

func (p *poller) wait(evs []pollEvent, msec int) (int, error) {
	var ts *unix.Timespec
	if msec >= 0 {
		t := unix.NsecToTimespec(int64(msec) * 1e6)
		ts = &t
	}
	n, err := unix.Kevent(p.kq, nil, p.raw[:len(evs)], ts)
	if err != nil {
		if err == unix.EINTR {
			return 0, nil
		}
		return 0, err
	}
	for i := range n {
		r := &p.raw[i]
		var f uint32
		switch r.Filter {
		case unix.EVFILT_USER:
			evs[i] = pollEvent{fd: -1}
			continue
		case unix.EVFILT_READ:
			f = evIn
			if r.Flags&unix.EV_EOF != 0 {
				f |= evRdHup
				if r.Fflags != 0 {
					f |= evErr
				}
			}
		case unix.EVFILT_WRITE:
			f = evOut
			if r.Flags&unix.EV_EOF != 0 {
				f |= evHup
			}
		}
		if r.Flags&unix.EV_ERROR != 0 {
			f |= evErr
		}
		evs[i] = pollEvent{fd: int32(r.Ident), ev: f}
	}
	return n, nil
}

func (p *poller) wake() {
	ev := unix.Kevent_t{Ident: wakeIdent, Filter: unix.EVFILT_USER, Fflags: unix.NOTE_TRIGGER}
	p.change(ev)
}

func (p *poller) woken() {}

func (p *poller) isWake(fd int32) bool { return fd == -1 }

func (p *poller) close() { unix.Close(p.kq) }
