//go:build race

package logmux

// raceEnabled loosens allocation bounds: under the race detector sync.Pool
// drops a share of Put items on purpose, so pooled buffers get reallocated.
const raceEnabled = true
