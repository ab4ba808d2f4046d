package control

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// SocketPath returns the control socket of the runner started with the
// config file at configPath (which must be absolute).
func SocketPath(configPath string) string { return SocketPathIn(Dir(), configPath) }

// SocketPathIn is SocketPath in the directory of control sockets dir (what
// Dir returns for another environment).
func SocketPathIn(dir, configPath string) string {
	sum := sha256.Sum256([]byte(configPath))
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+".sock")
}

// Dir is the directory of control sockets: $XDG_RUNTIME_DIR/clusterrun
// (per-user and cleaned at logout on systemd machines), else
// $TMPDIR/clusterrun-UID.
func Dir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Join(d, "clusterrun")
		}
	}
	return filepath.Join(os.TempDir(), "clusterrun-"+strconv.Itoa(os.Getuid()))
}

// ensureDir creates dir with mode 0700, or checks that an existing one is
// ours and private: in a shared /tmp someone else could have created it
// first to intercept commands.
func ensureDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to us (uid %d); refusing to use it", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// maxSocketPath is the longest path a unix socket may have: the size of
// sun_path (108 bytes on Linux, 104 on macOS and the BSDs) minus the NUL.
const maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// checkPath explains a socket path too long to bind or dial, which the
// kernel reports only as "invalid argument".
func checkPath(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("the control socket path %s is %d bytes, more than the %d a unix socket may have; set XDG_RUNTIME_DIR (or TMPDIR) to a shorter directory", path, len(path), maxSocketPath)
	}
	return nil
}
