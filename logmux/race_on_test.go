//go:build race

package logmux

// raceEnabled lifts allocation bounds: under the race detector sync.Pool
// drops a share of Put items on purpose, so pooled buffers get reallocated.
const raceEnabled = true
