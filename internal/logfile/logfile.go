package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"btl/internal/regular"
)

// DefaultLogMax is the size at which a task's log file is rotated.
const DefaultLogMax = 10 << 20

// EnvLogMax names the variable that overrides DefaultLogMax ("20M", "512K",
// a number of bytes, or 0 for no limit).
const EnvLogMax = "BTL_LOG_MAX"

// LogMax returns the log size limit set in env, or DefaultLogMax.
func LogMax(env []string) (int64, error) {
	v := strings.TrimSpace(getenv(env, EnvLogMax))
	if v == "" {
		return DefaultLogMax, nil
	}
	mult := int64(1)
	switch strings.ToUpper(v[len(v)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%s=%q: want a size such as 10M, 512K or 0", EnvLogMax, getenv(env, EnvLogMax))
	}
	return n * mult, nil
}

// OpenLogFile opens a log file for appending. It refuses to follow a
// symbolic link, creates the file with mode 0600, and opens only a regular
// file, without waiting: a FIFO or device at path is an error wrapping
// regular.ErrNotRegular.
func OpenLogFile(path string) (*os.File, error) {
	f, err := regular.Open(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("open log: %s is a symbolic link; refusing to write through it", path)
	case errors.Is(err, regular.ErrNotRegular):
		return nil, fmt.Errorf("open log: %s: %w; remove it", path, regular.ErrNotRegular)
	case err != nil:
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// LogWriter appends to a log file and keeps it under a size limit: before
// a line that would take the file past Max, the file is renamed to
// <path>.1 (replacing an older one) and a new file is started, so the
// newest output is always kept and every file holds whole lines. A line
// longer than Max is cut into parts of Max bytes; a line that reached the
// writer in parts may end past Max, by less than its own length. A write that fails leaves the writer ready to try again:
// the next write reopens the file, recreating the log directory if it was
// removed. A file deleted under the writer is noticed and reopened too.
type LogWriter struct {
	Path string
	Max  int64 // 0: no limit

	f       *os.File
	size    int64
	line    int64     // bytes of the unfinished last line written
	checked time.Time // when the file was last checked for deletion

	times    *os.File // the log's times (see TimesPath), opened on the first stamp
	stampSec int64    // the second of the last stamp
}

// NewLogWriter opens path for appending with the given limit.
func NewLogWriter(path string, max int64) (*LogWriter, error) {
	w := &LogWriter{Path: path, Max: max}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *LogWriter) open() error {
	f, err := OpenLogFile(w.Path)
	if errors.Is(err, os.ErrNotExist) {
		// The log directory was removed: make it again (only it, not
		// its parents, which btl checks when it starts).
		if os.Mkdir(filepath.Dir(w.Path), 0o700) == nil {
			f, err = OpenLogFile(w.Path)
		}
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	if !endsWithNewline(w.Path, w.size) {
		w.line = max(w.line, 1)
	} else if w.size > 0 {
		w.line = 0
	}
	w.checked = time.Now()
	return nil
}

// endsWithNewline reports whether the file at path, of the given size, is
// empty or ends with a newline.
func endsWithNewline(path string, size int64) bool {
	if size == 0 {
		return true
	}
	f, err := regular.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return true
	}
	defer func() { _ = f.Close() }()
	var b [1]byte
	_, err = f.ReadAt(b[:], size-1)
	return err != nil || b[0] == '\n'
}

// deleteCheck is how often a writer checks that its file is still there.
const deleteCheck = time.Second

// deleted reports, at most once per deleteCheck, whether the open file was
// deleted (its last link removed).
func (w *LogWriter) deleted() bool {
	if time.Since(w.checked) < deleteCheck {
		return false
	}
	w.checked = time.Now()
	fi, err := w.f.Stat()
	if err != nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

// Write appends p, rotating the file before each line that would take
// it over Max, and records that it was written now (see TimesPath).
func (w *LogWriter) Write(p []byte) (int, error) {
	return w.WriteStamped(p, time.Now())
}

// WriteStamped is Write of output that was written at at: a copier that
// knows when its source wrote each part (a journal entry's time) keeps
// that time in the log's times rather than the moment of the copy.
func (w *LogWriter) WriteStamped(p []byte, at time.Time) (int, error) {
	if err := w.ready(); err != nil {
		return 0, err
	}
	if w.Max <= 0 {
		return w.write(p, at)
	}
	written := 0
	for len(p) > 0 {
		seg := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			seg = p[:i+1]
		}
		n := int64(len(seg))
		cut := false
		switch {
		case w.line == 0:
			// A line that does not fit starts a new file.
			if w.size > 0 && w.size+n > w.Max {
				if err := w.rotate(); err != nil {
					return written, err
				}
			}
			cut = n > w.Max
		case w.size+n > w.Max && w.line+n > w.Max:
			// The rest of a line longer than Max: cut at Max.
			if w.size >= w.Max {
				if err := w.rotate(); err != nil {
					return written, err
				}
			}
			cut = true
		}
		if room := w.Max - w.size; cut && n > room {
			seg = seg[:room]
		}
		m, err := w.write(seg, at)
		written += m
		p = p[m:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// ready opens the file again when it was closed after an error or was
// deleted.
func (w *LogWriter) ready() error {
	if w.f != nil && w.deleted() {
		_ = w.f.Close()
		w.f = nil
		w.closeTimes()
	}
	if w.f == nil {
		return w.open()
	}
	return nil
}

// write appends p to the open file. After an error the file is closed,
// to be reopened by the next Write.
func (w *LogWriter) write(p []byte, at time.Time) (int, error) {
	if len(p) > 0 {
		w.stamp(w.size, at)
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		w.line = int64(n - 1 - i)
	} else {
		w.line += int64(n)
	}
	if err != nil {
		_ = w.f.Close()
		w.f = nil
		w.closeTimes()
	}
	return n, err
}

func (w *LogWriter) rotate() error {
	// Someone else (another writer) may have rotated already: only rename
	// the file we have open.
	if fi, err := os.Lstat(w.Path); err == nil {
		if cur, err := w.f.Stat(); err == nil && os.SameFile(fi, cur) {
			if err := os.Rename(w.Path, Rotated(w.Path)); err != nil {
				_ = w.f.Close()
				w.f = nil
				return fmt.Errorf("rotate log: %w", err)
			}
			// The times go with their log; a log without them has none.
			if err := os.Rename(TimesPath(w.Path), TimesPath(Rotated(w.Path))); errors.Is(err, os.ErrNotExist) {
				_ = os.Remove(TimesPath(Rotated(w.Path)))
			}
		}
	}
	_ = w.f.Close()
	w.f = nil
	w.closeTimes()
	return w.open()
}

// Close closes the file.
func (w *LogWriter) Close() error {
	w.closeTimes()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// pumpRetry is how often Pump tries writing again after a write error
// when no output comes.
const pumpRetry = 250 * time.Millisecond

// Pump copies r into the log until r ends. Unlike io.Copy it does not stop
// at a write error (a removed log directory, a full disk): r is always
// drained, so the writer on the other end never blocks; output that cannot
// be written is counted, and once writing works again a line in the log
// says how many bytes were lost. When r has read deadlines (a pipe), that
// line is written as soon as writing works, without waiting for output.
func (w *LogWriter) Pump(r io.Reader) error {
	buf := make([]byte, 64<<10)
	off := 0 // bytes of an unfinished line kept at the start of buf
	dl, _ := r.(interface{ SetReadDeadline(time.Time) error })
	var (
		lost  int64
		cause error
	)
	// resume writes the line about the lost output; it reports whether
	// writing works again.
	resume := func() bool {
		err := w.ready()
		if err == nil {
			_, err = w.Write([]byte(w.lostLine(lost, cause)))
		}
		if err != nil {
			return false
		}
		lost, cause = 0, nil
		return true
	}
	for {
		if dl != nil {
			if lost > 0 {
				_ = dl.SetReadDeadline(time.Now().Add(pumpRetry))
			} else {
				_ = dl.SetReadDeadline(time.Time{})
			}
		}
		n, rerr := r.Read(buf[off:])
		total := off + n
		// A full buffer ends where the read stopped, not where the task's
		// write did: keep its unfinished last line for the next read, so
		// that the log is rotated between lines.
		end := total
		if rerr == nil && total == len(buf) {
			if i := bytes.LastIndexByte(buf[:total], '\n'); i >= 0 {
				end = i + 1
			}
		}
		if lost > 0 && !resume() {
			lost += int64(end)
		} else if end > 0 {
			if m, err := w.Write(buf[:end]); err != nil {
				lost += int64(end - m)
				if cause == nil {
					cause = err
				}
			}
		}
		off = copy(buf, buf[end:total])
		switch {
		case rerr == nil, errors.Is(rerr, os.ErrDeadlineExceeded):
		case errors.Is(rerr, io.EOF):
			if lost > 0 {
				resume()
			}
			return nil
		default:
			return rerr
		}
	}
}

// lostLine is the line Pump writes into the log once writing works again.
func (w *LogWriter) lostLine(n int64, cause error) string {
	line := fmt.Sprintf("%s%s lost %d bytes of output that could not be written to the log (%v)\n", MarkerPrefix, time.Now().UTC().Format(time.RFC3339), n, cause)
	if w.line > 0 {
		line = "\n" + line
	}
	return line
}
