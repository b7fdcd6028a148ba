//go:build linux

// Command fakelaunchctl is a fake of macOS launchctl(1) for Linux tests of
// btl's launchd backend. Its behaviour, options and files are described in
// package btl/internal/fakelaunchctl/fake.
package main

import (
	"os"

	"btl/internal/fakelaunchctl/fake"
)

func main() {
	os.Exit(fake.Main(os.Args[1:], os.Stdout, os.Stderr))
}
