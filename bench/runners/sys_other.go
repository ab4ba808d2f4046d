//go:build !linux

package runners

import "syscall"

// runnerAttr: only Linux has a parent-death signal; the benchmarks run on
// Linux, and this file keeps the repository building elsewhere.
func runnerAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
