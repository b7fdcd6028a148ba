package core

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultLogMax is the size at which a task's log file is rotated.
const DefaultLogMax = 10 << 20

// EnvLogMax names the variable that overrides DefaultLogMax ("20M", "512K",
// a number of bytes, or 0 for no limit).
const EnvLogMax = "BTL_LOG_MAX"

// LogMax returns the log size limit set in env, or DefaultLogMax.
func LogMax(env []string) (int64, error) {
	v := strings.TrimSpace(Getenv(env, EnvLogMax))
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
		return 0, fmt.Errorf("%s=%q: want a size such as 10M, 512K or 0", EnvLogMax, Getenv(env, EnvLogMax))
	}
	return n * mult, nil
}

// OpenLogFile opens a log file for appending. It refuses to follow a
// symbolic link and creates the file with mode 0600.
func OpenLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("open log: %s is a symbolic link; refusing to write through it", path)
		}
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// LogWriter appends to a log file and keeps it under a size limit: when a
// write would take the file past Max, the file is renamed to <path>.1
// (replacing an older one) and a new file is started, so the newest output
// is always kept.
type LogWriter struct {
	Path string
	Max  int64 // 0: no limit

	f    *os.File
	size int64
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
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would take the file over Max.
func (w *LogWriter) Write(p []byte) (int, error) {
	if w.Max > 0 && w.size > 0 && w.size+int64(len(p)) > w.Max {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

func (w *LogWriter) rotate() error {
	// Someone else (another writer) may have rotated already: only rename
	// the file we have open.
	if fi, err := os.Lstat(w.Path); err == nil {
		if cur, err := w.f.Stat(); err == nil && os.SameFile(fi, cur) {
			if err := os.Rename(w.Path, w.Path+".1"); err != nil {
				return fmt.Errorf("rotate log: %w", err)
			}
		}
	}
	w.f.Close()
	return w.open()
}

// Close closes the file.
func (w *LogWriter) Close() error { return w.f.Close() }
