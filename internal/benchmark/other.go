//go:build !linux

// Command benchmark is btl's end-to-end benchmark; it reads /proc and
// drives fork and systemd tasks, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "benchmark: Linux only (it reads /proc); see docs/benchmarks.md")
	os.Exit(2)
}
