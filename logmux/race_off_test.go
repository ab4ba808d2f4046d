//go:build !race

package logmux

const raceEnabled = false
