package logread

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Follower reads a log as it grows, a Poll at a time. It waits for a log
// that does not exist yet; when the log is rotated (renamed to
// logfile.Rotated and a new file started at its path) it reads what the
// old file still held and goes on at the start of the new one; when the
// log is truncated (found shorter than what was read of it) it goes on
// at its start.
type Follower struct {
	path  string
	f     *os.File
	place func(*os.File) error
	// OnRestart, when set, is called each time reading goes on at the
	// start of a new file (rotated) or of the same one (truncated), after
	// the rest of the old one was read: offsets start again at 0.
	OnRestart func()
}

// Follow returns a Follower of the log at path. place, when not nil,
// positions the file when it is first opened; without it, the log is read
// from its start.
func Follow(path string, place func(*os.File) error) *Follower {
	return &Follower{path: path, place: place}
}

// File returns the file being read, nil when none was opened yet.
func (fl *Follower) File() *os.File { return fl.f }

// Open opens the log and positions it, unless it is open already. Its
// error wraps os.ErrNotExist while there is no log, and
// regular.ErrNotRegular for something other than a regular file.
func (fl *Follower) Open() error {
	if fl.f != nil {
		return nil
	}
	f, err := Open(fl.path)
	if err != nil {
		return err
	}
	if fl.place != nil {
		if err := fl.place(f); err != nil {
			_ = f.Close()
			return err
		}
	}
	fl.f = f
	return nil
}

// WaitOpen opens the log (Open), trying again every interval while it
// does not exist, until ctx is done; then the error wraps os.ErrNotExist.
func (fl *Follower) WaitOpen(ctx context.Context, every time.Duration) error {
	for {
		err := fl.Open()
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Poll copies to w what was written to the log since the last Poll,
// opening it first if it has come to exist. A log that does not exist
// yet is no error: nothing is copied.
func (fl *Follower) Poll(w io.Writer) error {
	if err := fl.Open(); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	cur, err := fl.f.Stat()
	if err != nil {
		return err
	}
	pos, err := fl.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if cur.Size() < pos {
		// Truncated.
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		fl.restart()
	} else if fi, err := os.Stat(fl.path); err == nil && !os.SameFile(fi, cur) {
		// Rotated: finish the old file, then go on with the new one.
		if nf, err := Open(fl.path); err == nil {
			if _, err := io.Copy(w, fl.f); err != nil {
				_ = nf.Close()
				return err
			}
			_ = fl.f.Close()
			fl.f = nf
			fl.restart()
		}
	}
	_, err = io.Copy(w, fl.f)
	return err
}

func (fl *Follower) restart() {
	if fl.OnRestart != nil {
		fl.OnRestart()
	}
}

// Close closes the file being read, if any.
func (fl *Follower) Close() error {
	if fl.f == nil {
		return nil
	}
	err := fl.f.Close()
	fl.f = nil
	return err
}

// Run polls the log into w at every tick until ctx is done, and reports
// false; or until done, asked before each Poll, reports true: then, once
// that last Poll has copied what was written before, it reports true.
func (fl *Follower) Run(ctx context.Context, w io.Writer, tick <-chan time.Time, done func() bool) (bool, error) {
	for {
		over := done()
		if err := fl.Poll(w); err != nil {
			return false, err
		}
		if over {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick:
		}
	}
}
