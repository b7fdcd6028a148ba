package logread

import (
	"bytes"
	"io"
	"os"
	"regexp"

	"btl/internal/logfile"
)

// Watch reads a run's lines as its log grows, for the first one that
// matches a regular expression: from an offset where the run's output
// begins, the lines after its start marker, across rotation.
type Watch struct {
	log     *Follower
	re      *regexp.Regexp
	started bool   // this run's start marker has been read
	partial []byte // the last line read, not yet ended
	matched string
	ok      bool
}

// NewWatch watches the log at path from offset off, where a run's output
// begins (its start marker among the first lines), for a line matching
// re. It opens the log now, if there is one, so that a rotation from now
// on is followed; a log smaller than off was rotated before, and is read
// from its start.
func NewWatch(path string, off int64, re *regexp.Regexp) *Watch {
	w := &Watch{re: re}
	w.log = Follow(path, func(f *os.File) error {
		if fi, err := f.Stat(); err == nil && fi.Size() < off {
			// Rotated since: the run's start is in the rotated file.
			w.started = true
			return nil
		}
		_, err := f.Seek(off, io.SeekStart)
		return err
	})
	w.log.OnRestart = func() { w.partial, w.started = nil, true }
	_ = w.log.Open() // or at the first Match
	return w
}

// Match reads what was added to the log and reports the first line of
// this run that matches.
func (w *Watch) Match() (string, bool) {
	if w.ok {
		return w.matched, true
	}
	_ = w.log.Poll(w)
	if !w.ok && w.started && w.re.Match(w.partial) {
		w.matched, w.ok = string(w.partial), true
	}
	if w.ok {
		_ = w.log.Close()
	}
	return w.matched, w.ok
}

// Write looks at the complete lines of p, after what was read before.
func (w *Watch) Write(p []byte) (int, error) {
	if w.ok {
		return len(p), nil
	}
	b := append(w.partial, p...)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		line := string(b[:i])
		b = b[i+1:]
		if !w.started {
			_, w.started = logfile.ParseMarker(line)
			continue
		}
		if w.re.MatchString(line) {
			w.matched, w.ok = line, true
			break
		}
	}
	w.partial = append(w.partial[:0:0], b...)
	return len(p), nil
}

// Close stops watching.
func (w *Watch) Close() error { return w.log.Close() }
