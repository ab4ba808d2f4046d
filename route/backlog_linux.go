package route

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// acceptQueueCap returns how many connections the socket listening on ap
// holds in its accept queue (its listen backlog + 1, as the kernel counts),
// or 0 if that cannot be learned. It asks the kernel's socket diagnostics
// (what ss(8) uses; no privilege needed) for the listening TCP sockets of
// ap's family and takes the one bound to ap's port on ap's address or on
// the wildcard. An app that binds $PORT itself and one that listens on the
// socket the runner gave it are found alike.
func acceptQueueCap(ap netip.AddrPort) int {
	family := uint8(unix.AF_INET)
	if ap.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	// struct nlmsghdr + struct inet_diag_req_v2 (a dump of one family's
	// listening TCP sockets).
	const reqLen = unix.SizeofNlMsghdr + 56
	var req [reqLen]byte
	h := (*unix.NlMsghdr)(unsafe.Pointer(&req[0]))
	h.Len = reqLen
	h.Type = 20 // SOCK_DIAG_BY_FAMILY
	h.Flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	h.Seq = 1
	body := req[unix.SizeofNlMsghdr:]
	body[0] = family
	body[1] = unix.IPPROTO_TCP
	binary.LittleEndian.PutUint32(body[4:8], 1<<10) // TCP_LISTEN
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < unix.SizeofNlMsghdr {
			return 0
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				return 0
			}
			if c, ok := matchListener(m.Data, ap); ok {
				return c
			}
		}
	}
}

// matchListener reads one struct inet_diag_msg: its id (source port and
// address) and, for a listening socket, idiag_wqueue, the backlog.
func matchListener(d []byte, ap netip.AddrPort) (int, bool) {
	if len(d) < 72 {
		return 0, false
	}
	sport := binary.BigEndian.Uint16(d[4:6])
	if sport != ap.Port() {
		return 0, false
	}
	var src netip.Addr
	if d[0] == unix.AF_INET {
		src = netip.AddrFrom4([4]byte(d[8:12]))
	} else {
		src = netip.AddrFrom16([16]byte(d[8:24])).Unmap()
	}
	if src != ap.Addr() && !src.IsUnspecified() {
		return 0, false
	}
	backlog := binary.LittleEndian.Uint32(d[60:64])
	return int(backlog) + 1, true
}
