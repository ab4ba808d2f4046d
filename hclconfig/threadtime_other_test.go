//go:build !linux

package hclconfig

import "time"

var wallStart = time.Now()

// threadTime is the wall clock where a thread's CPU time is not at hand.
func threadTime() time.Duration { return time.Since(wallStart) }
