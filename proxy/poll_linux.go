package proxy

import (
	"golang.org/x/sys/unix"
)

// poller is the loop's readiness source: epoll. Connection sockets are
// registered edge-triggered for reading, writing and the peer's shutdown,
// once, for their whole life (no epoll_ctl per request); the listener
// level-triggered, exclusive when several loops share it; an eventfd wakes
// the loop for commands from other goroutines.
type poller struct {
	epfd   int
	wakefd int
	raw    []unix.EpollEvent
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	p := &poller{epfd: epfd, wakefd: wfd, raw: make([]unix.EpollEvent, maxEvents)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) addConn(fd int) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)})
}

func (p *poller) addListener(fd int, shared bool) error {
	ev := uint32(unix.EPOLLIN)
	if shared {
		ev |= unix.EPOLLEXCLUSIVE
	}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)})
}

func (p *poller) delListener(fd int) error {
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// wait fills evs with ready descriptors, waiting at most msec (-1: no
// bound).
func (p *poller) wait(evs []pollEvent, msec int) (int, error) {
	n, err := unix.EpollWait(p.epfd, p.raw[:len(evs)], msec)
	if err != nil {
		if err == unix.EINTR {
			return 0, nil
		}
		return 0, err
	}
	for i := range n {
		r := &p.raw[i]
		var f uint32
		if r.Events&unix.EPOLLIN != 0 {
			f |= evIn
		}
		if r.Events&unix.EPOLLOUT != 0 {
			f |= evOut
		}
		if r.Events&unix.EPOLLRDHUP != 0 {
			f |= evRdHup
		}
		if r.Events&unix.EPOLLHUP != 0 {
			f |= evHup
		}
		if r.Events&unix.EPOLLERR != 0 {
			f |= evErr
		}
		evs[i] = pollEvent{fd: r.Fd, ev: f}
	}
	return n, nil
}

// wake makes the loop's wait return; safe from any goroutine.
func (p *poller) wake() {
	var one = [8]byte{1}
	unix.Write(p.wakefd, one[:])
}

// woken consumes the wake-ups.
func (p *poller) woken() {
	var b [8]byte
	unix.Read(p.wakefd, b[:])
}

func (p *poller) isWake(fd int32) bool { return int(fd) == p.wakefd }

func (p *poller) close() {
	unix.Close(p.wakefd)
	unix.Close(p.epfd)
}
