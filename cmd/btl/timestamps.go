package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"time"

	"btl/core"
	"btl/internal/logfile"
)

// lineClock tells when each line of a log was written: from the times its
// writer keeps beside it (logfile.TimesPath), else, for a log written
// before btl kept them, from the start of the run the line belongs to
// (its start marker). A start marker is its own time.
type lineClock struct {
	path   string
	stamps []logfile.Stamp
	next   int64     // where to read on in the times file
	run    time.Time // the time of the last start marker seen
	loaded time.Time // when the times were last read
}

func newLineClock(path string) *lineClock {
	c := &lineClock{path: path}
	c.load()
	return c
}

func (c *lineClock) load() {
	more, next := logfile.ReadTimes(c.path, c.next)
	c.stamps, c.next, c.loaded = append(c.stamps, more...), next, time.Now()
}

// reset forgets what was read of the times: the log was rotated or
// truncated, and offsets start again.
func (c *lineClock) reset() {
	c.stamps, c.next = nil, 0
	c.load()
}

// at returns the time of line, which starts at offset off of the log.
func (c *lineClock) at(off int64, line []byte) (time.Time, bool) {
	if at, ok := core.ParseStartMarker(string(line)); ok {
		c.run = at
		return at, true
	}
	if n := len(c.stamps); (n == 0 || off > c.stamps[n-1].Off) && time.Since(c.loaded) > followPoll/2 {
		c.load() // written since the times were read
	}
	if at, ok := logfile.TimeAt(c.stamps, off); ok {
		return at, true
	}
	return c.run, !c.run.IsZero()
}

// linesSince returns the offset of the first line of f written at or
// after t (to the second); f's size when there is none.
func linesSince(f *os.File, c *lineClock, t time.Time) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	t = t.Truncate(time.Second)
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: its start decides.
			if at, ok := c.at(off, line); ok && !at.Before(t) {
				return off, nil
			}
			off += int64(len(line))
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				off += int64(len(line))
			}
			if err == nil {
				continue
			}
		} else if len(line) > 0 {
			if at, ok := c.at(off, line); ok && !at.Before(t) {
				return off, nil
			}
			off += int64(len(line))
		}
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// stampWidth is the width of a line's time as --timestamps prints it.
const stampWidth = len("2006-01-02T15:04:05Z")

// stampWriter writes the log's lines to w, each after the time it was
// written (--timestamps). It holds a line back until its end is written.
type stampWriter struct {
	w       io.Writer
	clock   *lineClock
	off     int64 // offset in the log of the first byte of partial
	partial []byte
}

func (s *stampWriter) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := s.line(s.partial[:i+1]); err != nil {
			return 0, err
		}
		s.off += int64(i + 1)
		s.partial = s.partial[i+1:]
	}
}

func (s *stampWriter) line(l []byte) error {
	prefix := "-" + string(bytes.Repeat([]byte(" "), stampWidth-1))
	if at, ok := s.clock.at(s.off, l); ok {
		prefix = at.UTC().Format("2006-01-02T15:04:05Z")
	}
	_, err := io.WriteString(s.w, prefix+" "+string(l))
	return err
}

// flush writes a last line that has no end yet.
func (s *stampWriter) flush() error {
	if len(s.partial) == 0 {
		return nil
	}
	err := s.line(append(s.partial, '\n'))
	s.off += int64(len(s.partial))
	s.partial = nil
	return err
}

// reset starts again at offset 0 of a rotated or truncated log.
func (s *stampWriter) reset() {
	_ = s.flush()
	s.off = 0
	s.clock.reset()
}
