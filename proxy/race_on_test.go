//go:build race

package proxy

// raceEnabled: the race detector multiplies memory use, so budgets in bytes
// are not checked under it.
const raceEnabled = true
