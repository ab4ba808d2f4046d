//go:build !linux

package signals

import "golang.org/x/sys/unix"

const ioctlGetTermios = unix.TIOCGETA
