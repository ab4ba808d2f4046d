//go:build !linux

package control

// maxSocketPath is the longest path a unix socket may have: sun_path holds
// 104 bytes on macOS and the BSDs, with the terminating NUL.
const maxSocketPath = 103
