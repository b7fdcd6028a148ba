package launchd

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"

	"btl/core"
	"btl/internal/regular"
)

var _ core.Describer = (*Backend)(nil)

// Describe returns the launchctl command that prints t's agent: its
// recorded service target, or its label in the domain new agents go to.
func (b *Backend) Describe(ctx context.Context, t core.Task) string {
	if strings.Contains(t.Unit, "/") { // the service target itself
		return "launchctl print " + t.Unit
	}
	dom := "gui/" + strconv.Itoa(os.Getuid())
	if d, err := b.Domain(ctx); err == nil {
		dom = d
	}
	return "launchctl print " + dom + "/" + t.Unit
}

// LocalNetworkNote returns, for a launchd task whose log (its last 64 KiB)
// shows EHOSTUNREACH, one line for `btl show` saying that macOS's Local
// Network privacy may be why, and "" otherwise. On macOS 15 and later a
// launchd job is its own responsible process, and its connections to hosts
// on the local subnet fail with EHOSTUNREACH until the user allows it; the
// same command from Terminal, or under fork, is not affected. btl cannot
// see the prompt, only its effect.
func LocalNetworkNote(logFile string) string {
	if !logShowsUnreachable(logFile) {
		return ""
	}
	return `the log shows "No route to host": macOS Local Network privacy blocks launchd jobs from the local subnet until allowed; --backend fork is not affected`
}

// unreachable are the ways EHOSTUNREACH shows in a log: the errno's name
// and its text.
var unreachable = [][]byte{[]byte("EHOSTUNREACH"), []byte("No route to host"), []byte("no route to host")}

// logShowsUnreachable reports whether the last 64 KiB of the log at path
// show EHOSTUNREACH. Only a regular file is read: a FIFO or a device where
// the log should be is never waited on.
func logShowsUnreachable(path string) bool {
	f, err := regular.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	const tail = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		if _, err := f.Seek(fi.Size()-tail, io.SeekStart); err != nil {
			return false
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, tail))
	if err != nil {
		return false
	}
	for _, u := range unreachable {
		if bytes.Contains(data, u) {
			return true
		}
	}
	return false
}
