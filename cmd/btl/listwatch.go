package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// listWatchEvery is how often btl list --watch redraws.
const listWatchEvery = time.Second

// listWatch redraws the task table every second in place, on the normal
// screen (what was printed stays, copy and paste keep working), until
// Ctrl-C or q. On a terminal, q is read without Enter.
func (e *env) listWatch(ctx context.Context, wide bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if restore := keysNow(os.Stdin); restore != nil {
		defer restore()
	}
	go func() {
		// q (or Ctrl-C in raw input, or the end of input) ends it.
		b := make([]byte, 64)
		for {
			n, err := os.Stdin.Read(b)
			if bytes.ContainsAny(b[:n], "qQ\x03") || err != nil && err != io.EOF {
				cancel()
				return
			}
			if err == io.EOF {
				return
			}
		}
	}()
	color := colorOK(e.stdout)
	prev := 0
	for {
		var frame bytes.Buffer
		fmt.Fprintf(&frame, "Every %v: btl list   %s   (q or Ctrl-C quits)\n", listWatchEvery, time.Now().Format("15:04:05"))
		views, err := e.mgr.List(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if len(views) == 0 {
			fmt.Fprintln(&frame, "No background processes tracked")
		} else if err := writeTable(&frame, rowsOf(views, e.stats(ctx, views), nil), wide, color); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if prev > 0 {
			// Back to the first line of the previous frame, and clear
			// from there: no alternate screen.
			fmt.Fprintf(e.stdout, "\x1b[%dA\r\x1b[J", prev)
		}
		_, _ = e.stdout.Write(frame.Bytes())
		prev = strings.Count(frame.String(), "\n")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(listWatchEvery):
		}
	}
}

// keysNow makes a terminal deliver keys as they are typed (no line
// editing, no echo; Ctrl-C still interrupts) and returns what restores
// it; nil when f is no terminal.
func keysNow(f *os.File) func() {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if unix.IoctlSetTermios(fd, ioctlSetTermios, &t) != nil {
		return nil
	}
	return func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, old) }
}
