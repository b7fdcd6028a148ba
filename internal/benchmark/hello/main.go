// Command hello is the floor of a Go program's start-up for the
// benchmark: it prints one line and exits. scripts/bench builds it with
// the same flags as btl, and the driver times `btl --version` against it.
package main

import "os"

func main() {
	_, _ = os.Stdout.WriteString("hello\n")
}
