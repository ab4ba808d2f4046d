//go:build unix && !linux && !darwin && !freebsd

package rawsock

import "syscall"

// Read reads into b what fd has.
func Read(fd int, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(fd, b)
	if e, ok := err.(syscall.Errno); ok {
		return 0, e
	} else if err != nil {
		return 0, syscall.EIO
	}
	return n, 0
}

// Write writes what of b fd takes.
func Write(fd int, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(fd, b)
	if e, ok := err.(syscall.Errno); ok {
		return 0, e
	} else if err != nil {
		return 0, syscall.EIO
	}
	return n, 0
}
