package core

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"btl/internal/logfile"
)

// MarkerPrefix starts the line btl writes into a task's log when a run
// starts.
const MarkerPrefix = logfile.MarkerPrefix

// StartMarker is the line that marks the start of a run in the task's log
// (logfile.Marker):
//
//	[btl] 2026-11-26T01:31:28Z started PID 1234: npm run dev
func StartMarker(at time.Time, pid int, command string) string {
	return logfile.Marker{At: at, PID: pid, Command: OneLine(command)}.Line()
}

// ParseStartMarker returns the time of a start marker line, and false for
// any other line.
func ParseStartMarker(line string) (time.Time, bool) {
	m, ok := logfile.ParseMarker(line)
	return m.At, ok
}

// OneLine renders s on one line for a terminal or a log: control
// characters and bytes that are not UTF-8 are shown as Go-style escapes
// (\n, \x1b, \xff).
func OneLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
