package main

import (
	"io"
	"os"

	"golang.org/x/term"

	"btl/core"
)

// colorOK reports whether w is a terminal that may get colours: not when
// NO_COLOR is set (https://no-color.org) or TERM is dumb.
func colorOK(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// paint colours text by the status it shows.
func paint(s core.Status, text string) string {
	code := ""
	switch {
	case s.State == core.Running:
		code = "32" // green
	case s.State == core.Exited && s.Code == 0:
		code = "2" // dim
	case s.State == core.Exited, s.State == core.Failed, s.State == core.Signaled:
		code = "31" // red
	default:
		code = "33" // yellow
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}
