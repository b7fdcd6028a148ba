// Package logread is the one reader of btl's log files: it finds runs by
// their start markers (logfile.Marker), the last lines of a log, the lines
// written since a time, and follows a log as it grows, across rotation
// (logfile.Rotated) and truncation. The writer is internal/logfile.
package logread

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"

	"btl/internal/logfile"
	"btl/internal/regular"
)

// Open opens a log file for reading: only a regular file, and without
// waiting, so a FIFO or device at path is an error wrapping
// regular.ErrNotRegular, never a hang.
func Open(path string) (*os.File, error) {
	return regular.Open(path, os.O_RDONLY, 0)
}

// RunWindow is how far back from a log's end its last run's start marker
// is looked for: a run that wrote more is read from the window's start.
const RunWindow = 4 << 20

// block is how much of a log is read at a time when it is read backwards.
const block = 64 << 10

// lineStarts calls fn with the offset of each line that starts at or
// after from in the first size bytes of r, last first, until fn returns
// false; head holds the line's first bytes when they were read already
// (cut anywhere), else nothing. A final newline starts no line.
func lineStarts(r io.ReaderAt, size, from int64, fn func(off int64, head []byte) bool) error {
	buf := make([]byte, block)
	end, low := size-1, max(from-1, 0)
	for end > low {
		start := max(end-block, low)
		chunk := buf[:end-start]
		if n, err := r.ReadAt(chunk, start); n < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // shrunk while read
			}
			return err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' && !fn(start+int64(i)+1, chunk[i+1:]) {
				return nil
			}
		}
		end = start
	}
	if from <= 0 && size > 0 {
		fn(0, nil)
	}
	return nil
}

// markerHead is how many bytes of a line say whether it is a start
// marker: its time and PID are in its first bytes.
const markerHead = 128

// isMarker reports whether the line that begins at off in r, whose first
// bytes head holds (all of them, some, or none), is a start marker.
func isMarker(r io.ReaderAt, off int64, head []byte) bool {
	if len(head) > 0 && head[0] != logfile.MarkerPrefix[0] {
		return false
	}
	if len(head) < markerHead && bytes.IndexByte(head, '\n') < 0 {
		head = make([]byte, markerHead)
		n, _ := r.ReadAt(head, off)
		head = head[:n]
	}
	line, _, _ := bytes.Cut(head[:min(len(head), markerHead)], []byte("\n"))
	_, ok := logfile.ParseMarker(string(line))
	return ok
}

// TailStart returns the offset of the start of the last n lines of the
// first size bytes of r (a final newline ends the last line; it does not
// start another): 0 when there are fewer, size when n is 0.
func TailStart(r io.ReaderAt, size int64, n int) (int64, error) {
	if n <= 0 {
		return size, nil
	}
	at, count := int64(0), 0
	err := lineStarts(r, size, 0, func(off int64, _ []byte) bool {
		count++
		if count == n {
			at = off
			return false
		}
		return true
	})
	return at, err
}

// SeekTail positions f at the start of its last n lines.
func SeekTail(f *os.File, n int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	at, err := TailStart(f, fi.Size(), n)
	if err != nil {
		return err
	}
	_, err = f.Seek(at, io.SeekStart)
	return err
}

// LastRun returns the offset of the last start marker in the last
// RunWindow bytes of the first size bytes of r, and true; or, when they
// hold none, the offset at which they begin, and false.
func LastRun(r io.ReaderAt, size int64) (int64, bool, error) {
	from := max(size-RunWindow, 0)
	at, found := from, false
	err := lineStarts(r, size, from, func(off int64, head []byte) bool {
		if isMarker(r, off, head) {
			at, found = off, true
			return false
		}
		return true
	})
	return at, found, err
}

// SeekLastRun positions f at its last run's start marker (LastRun).
func SeekLastRun(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	at, _, err := LastRun(f, fi.Size())
	if err != nil {
		return err
	}
	_, err = f.Seek(at, io.SeekStart)
	return err
}

// LastRunStart returns the offset of the last run's start marker in the
// log at path (LastRun), 0 when there is no log.
func LastRunStart(path string) int64 {
	f, err := Open(path)
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	at, _, _ := LastRun(f, fi.Size())
	return at
}

// LastRunLines returns up to n last lines of the last run in the log at
// path: the lines after its start marker (LastRun), without their
// newlines.
func LastRunLines(path string, n int) []string {
	f, err := Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil || n <= 0 {
		return nil
	}
	size := fi.Size()
	run, found, err := LastRun(f, size)
	if err != nil {
		return nil
	}
	tail, err := TailStart(f, size, n)
	if err != nil {
		return nil
	}
	from := max(run, tail)
	b := make([]byte, size-from)
	if _, err := f.ReadAt(b, from); err != nil && err != io.EOF {
		return nil
	}
	text := strings.TrimRight(string(b), "\n")
	if found && from == run {
		_, text, _ = strings.Cut(text, "\n") // the marker itself
	}
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// FirstCommand returns the command named by the first start marker in the
// first 64 KiB of the log at path or, when the log was rotated past its
// first run's marker, of its rotated part; "" when neither has one.
func FirstCommand(path string) string {
	for _, p := range []string{path, logfile.Rotated(path)} {
		if cmd, ok := firstCommand(p); ok {
			return cmd
		}
	}
	return ""
}

func firstCommand(path string) (string, bool) {
	f, err := Open(path)
	if err != nil {
		return "", false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if m, ok := logfile.ParseMarker(sc.Text()); ok {
			return m.Command, true
		}
	}
	return "", false
}
