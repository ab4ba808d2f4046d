//go:build !linux

package proc

func groupUsage(pgids []int) (map[int]Usage, error) { return nil, ErrUnsupported }

func self() (int64, int) { return -1, -1 }
