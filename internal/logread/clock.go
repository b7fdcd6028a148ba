package logread

import (
	"bufio"
	"io"
	"os"
	"time"

	"btl/internal/logfile"
)

// reloadAfter is how long a Clock goes on with the times it read before
// it reads those written since, for a line past them.
const reloadAfter = 50 * time.Millisecond

// Clock tells when each line of a log was written: from the times its
// writer keeps beside it (logfile.TimesPath), else, for a log written
// before btl kept them, from the start of the run the line belongs to
// (its start marker). A start marker is its own time.
type Clock struct {
	path   string
	stamps []logfile.Stamp
	next   int64     // where to read on in the times file
	run    time.Time // the time of the last start marker seen
	loaded time.Time // when the times were last read
}

// NewClock returns the Clock of the log at path.
func NewClock(path string) *Clock {
	c := &Clock{path: path}
	c.load()
	return c
}

func (c *Clock) load() {
	more, next := logfile.ReadTimes(c.path, c.next)
	c.stamps, c.next, c.loaded = append(c.stamps, more...), next, time.Now()
}

// Reset forgets what was read of the times: the log was rotated or
// truncated, and offsets start again.
func (c *Clock) Reset() {
	c.stamps, c.next = nil, 0
	c.load()
}

// At returns the time of line, which starts at offset off of the log.
func (c *Clock) At(off int64, line []byte) (time.Time, bool) {
	if m, ok := logfile.ParseMarker(string(line)); ok {
		c.run = m.At
		return m.At, true
	}
	if n := len(c.stamps); (n == 0 || off > c.stamps[n-1].Off) && time.Since(c.loaded) > reloadAfter {
		c.load() // written since the times were read
	}
	if at, ok := logfile.TimeAt(c.stamps, off); ok {
		return at, true
	}
	return c.run, !c.run.IsZero()
}

// Since returns the offset of the first line of f written at or
// after t (to the second); f's size when there is none.
func Since(f *os.File, c *Clock, t time.Time) (int64, error) {
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
			if at, ok := c.At(off, line); ok && !at.Before(t) {
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
			if at, ok := c.At(off, line); ok && !at.Before(t) {
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
