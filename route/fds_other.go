//go:build !unix

package route

func softFileLimit() (int64, bool) { return 0, false }
