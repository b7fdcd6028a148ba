// Command btl runs commands in the background, one instance per command
// and directory: running the same command again in the same directory
// replaces the old instance.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"btl/backend/fork"
	"btl/backend/launchd"
	"btl/backend/systemd"
	"btl/core"
	"btl/internal/logpump"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	fork.MaybeSupervise()
	launchd.MaybeLaunch()
	systemd.MaybeAgent()
	logpump.MaybeRun()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run executes btl with args and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	var ee *exitError
	var xe *core.ExecError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &xe):
		return xe.ExitCode()
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

// usageError marks err as a usage mistake: exit code 2.
func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}
