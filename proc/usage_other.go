//go:build !linux

package proc

func groupUsage([]int, bool) (map[int]Usage, error) { return nil, ErrUnsupported }

func processMemory([]int) (Memory, error) { return Memory{}, ErrUnsupported }

func openFDs() int { return -1 }
