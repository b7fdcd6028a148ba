package logfile

import (
	"bufio"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"btl/internal/regular"
)

// A log's times: every writer of a log (LogWriter) keeps beside it, in
// TimesPath(log), when its bytes were written, so that btl logs can
// print the lines written since a time (--since) and each line's time
// (--timestamps) without changing the log itself. Each entry is a text
// line "<offset> <unix seconds>": the bytes of the log from offset on
// were written at that second or later, until the next entry. A writer
// adds an entry only in a second in which it writes, so the file grows by
// at most one short line per second of output, and it is rotated with its
// log (<log>.1 has <log>.1.times).

// TimesPath is the file that keeps the write times of the log at path.
func TimesPath(path string) string { return path + ".times" }

// Stamp says that the log's bytes from Off on were written at At (to the
// second) or later.
type Stamp struct {
	Off int64
	At  time.Time
}

// stamp records, before bytes are appended at offset off, that they are
// written at at; at most one entry per second. Failing to record is no
// reason to lose output: the times are best effort.
func (w *LogWriter) stamp(off int64, at time.Time) {
	sec := at.Unix()
	if sec == w.stampSec && w.times != nil {
		return
	}
	if w.times == nil {
		f, err := regular.Open(TimesPath(w.Path), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return
		}
		w.times = f
	}
	w.stampSec = sec
	_, _ = w.times.WriteString(strconv.FormatInt(off, 10) + " " + strconv.FormatInt(sec, 10) + "\n")
}

// closeTimes closes the times file, so that the next stamp opens the one
// beside the log as it then is (after a rotation or a reopen).
func (w *LogWriter) closeTimes() {
	if w.times != nil {
		_ = w.times.Close()
		w.times = nil
	}
	w.stampSec = 0
}

// ReadTimes returns the stamps kept for the log at path, in the order of
// their offsets, reading from the times file's byte from on; next is where
// to read on from. A log without times gives none.
func ReadTimes(path string, from int64) (stamps []Stamp, next int64) {
	f, err := regular.Open(TimesPath(path), os.O_RDONLY, 0)
	if err != nil {
		return nil, from
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, from
	}
	r := bufio.NewReader(f)
	next = from
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // a line not yet complete is read next time
		}
		next += int64(len(line))
		off, sec, ok := strings.Cut(strings.TrimSpace(line), " ")
		o, err1 := strconv.ParseInt(off, 10, 64)
		s, err2 := strconv.ParseInt(sec, 10, 64)
		if !ok || err1 != nil || err2 != nil || o < 0 {
			continue
		}
		stamps = append(stamps, Stamp{Off: o, At: time.Unix(s, 0).UTC()})
	}
	sort.SliceStable(stamps, func(i, j int) bool { return stamps[i].Off < stamps[j].Off })
	return stamps, next
}

// TimeAt returns the time the byte of the log at offset off was written,
// as stamps (sorted by offset) tell, and false when they do not tell.
func TimeAt(stamps []Stamp, off int64) (time.Time, bool) {
	i := sort.Search(len(stamps), func(i int) bool { return stamps[i].Off > off })
	if i == 0 {
		return time.Time{}, false
	}
	return stamps[i-1].At, true
}
