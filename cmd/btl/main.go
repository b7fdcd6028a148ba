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
	"runtime/debug"
	"strings"
	"syscall"

	"btl/core"
	"btl/internal/reexec"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build does). Plain go build and go install leave it empty: then the
// module version or the VCS revision the binary was built from is used.
var version string

// buildVersion returns version, or what the binary's build information
// says: the module version (go install m@v1.2.3), else the VCS revision
// (go build in a checkout), marked -dirty for a modified tree.
func buildVersion() string {
	if version != "" {
		return version
	}
	return versionOf(debug.ReadBuildInfo())
}

// versionOf is the version build information gives.
func versionOf(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	return rev[:min(len(rev), 12)] + dirty
}

func main() {
	// The parts btl re-executes itself as (supervisor, launcher, log
	// agent, log pump) are registered by the backends' packages.
	reexec.Init()
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
	root.SetArgs(markStart(root, args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "Error: %s\n", oneLine(err))
	return exitCode(err)
}

// oneLine renders err on one line, whatever it holds (errors.Join puts
// each on its own), and escaped: an error often quotes what the user gave
// (a command name, a hash), which must not reach a terminal as control
// sequences.
func oneLine(err error) string {
	return core.OneLine(strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
}

// exitCode is btl's exit code for err (see btl --help).
func exitCode(err error) int {
	var ee *exitError
	var xe *core.ExecError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &xe):
		return xe.ExitCode()
	case errors.Is(err, errUsage), errors.Is(err, core.ErrBadName), errors.Is(err, core.ErrNameInUse):
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

// usageError marks err as a usage mistake: exit code 2.
func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}
