//go:build !linux

package proc

// ReleaseStartupPages does nothing outside Linux, whose semantics of
// MADV_DONTNEED on file mappings it relies on.
func ReleaseStartupPages() int64 { return 0 }
