//go:build !linux

package proc

func groupUsage(pgids []int) (map[int]Usage, error) { return nil, ErrUnsupported }
