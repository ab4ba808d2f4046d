//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/idle runs on Linux only: it reads /proc and gives its clients a parent-death signal")
	os.Exit(2)
}
