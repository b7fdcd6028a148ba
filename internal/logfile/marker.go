package logfile

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MarkerPrefix starts every line btl itself writes into a task's log.
const MarkerPrefix = "[btl] "

// Rotated is the name a log at path is given when it is rotated: the
// older part of the log, replaced at each rotation.
func Rotated(path string) string { return path + ".1" }

// Marker is what a start marker says: the line that marks the start of a
// run in a task's log,
//
//	[btl] 2026-11-26T01:31:28Z started PID 1234: npm run dev
type Marker struct {
	At      time.Time // when the run started, to the second
	PID     int       // the run's process
	Command string    // the command, on one line
}

// Line is the marker's line, with its newline. Command must be on one
// line already.
func (m Marker) Line() string {
	return fmt.Sprintf("%s%s started PID %d: %s\n", MarkerPrefix, m.At.UTC().Format(time.RFC3339), m.PID, m.Command)
}

// ParseMarker reads a start marker from line, with or without its
// newline, and reports false for any other line. A line cut after the
// marker's colon (the first bytes of a long one) is still read as a
// marker, with Command cut too.
func ParseMarker(line string) (Marker, bool) {
	rest, ok := strings.CutPrefix(line, MarkerPrefix)
	if !ok {
		return Marker{}, false
	}
	stamp, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return Marker{}, false
	}
	rest, ok = strings.CutPrefix(rest, "started PID ")
	if !ok {
		return Marker{}, false
	}
	pid, rest, ok := strings.Cut(rest, ":")
	if !ok || pid == "" || strings.TrimLeft(pid, "0123456789") != "" {
		return Marker{}, false
	}
	n, err := strconv.Atoi(pid)
	if err != nil {
		return Marker{}, false
	}
	at, err := time.Parse(time.RFC3339, stamp)
	if err != nil {
		return Marker{}, false
	}
	rest = strings.TrimSuffix(rest, "\n")
	return Marker{At: at, PID: n, Command: strings.TrimPrefix(rest, " ")}, true
}

// LogOf returns the log that the file named name belongs to: the log
// itself, or the log whose rotated part or times name is.
func LogOf(name string) string {
	name = strings.TrimSuffix(name, TimesPath(""))
	return strings.TrimSuffix(name, Rotated(""))
}
