package systemd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/regular"
)

// journal copies one task unit's journal entries into the task's log file.
// It is what SyncLog and the log agent run.
type journal struct {
	Journalctl string   `json:"journalctl"`     // absolute path of journalctl
	Args       []string `json:"args,omitempty"` // extra journalctl arguments (tests: -D dir)
	UID        int      `json:"uid"`
	Ident      string   `json:"ident"`    // the task unit's SyslogIdentifier
	LogFile    string   `json:"log_file"` // where the lines go
	LogMax     int64    `json:"log_max"`  // rotate the log file past this size
	Cursor     string   `json:"cursor"`   // file holding the last copied entry's cursor
	Lock       string   `json:"lock"`     // file flocked while copying

	until int64 // when not 0: copy only the entries received before it (µs since the epoch)
}

// journalFor returns the journal copier of the task with the given hash,
// whose unit is unit.
func (b *Backend) journalFor(unit, hash, logFile string, logMax int64) *journal {
	return &journal{
		Journalctl: b.journalctl,
		Args:       b.journalArgs,
		UID:        os.Getuid(),
		Ident:      syslogIdent(unit),
		LogFile:    logFile,
		LogMax:     logMax,
		Cursor:     filepath.Join(b.dirs.Run, hash+".cursor"),
		Lock:       filepath.Join(b.dirs.Run, hash+".log.lock"),
	}
}

// command returns journalctl with args, after the common options.
func (j *journal) command(ctx context.Context, args ...string) *exec.Cmd {
	all := append([]string{"--quiet", "--no-pager"}, j.Args...)
	cmd := exec.CommandContext(ctx, j.Journalctl, append(all, args...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
	return cmd
}

// matches select the task unit's own output: its stdout and stderr carry
// the unit's SyslogIdentifier, which journald takes from the stream itself.
// _SYSTEMD_USER_UNIT is not used: journald finds it in /proc, and misses it
// for a process that exits at once.
func (j *journal) matches() []string {
	return []string{"SYSLOG_IDENTIFIER=" + j.Ident, "_UID=" + strconv.Itoa(j.UID)}
}

// syslogIdent is the SyslogIdentifier of a task unit: its name without
// ".service", so that the journal tells data directories apart too.
func syslogIdent(unit string) string { return strings.TrimSuffix(unit, ".service") }

// entry is one journal entry as `journalctl -o json` prints it.
type entry struct {
	Cursor   string          `json:"__CURSOR"`
	Realtime string          `json:"__REALTIME_TIMESTAMP"` // µs since the epoch
	Message  json.RawMessage `json:"MESSAGE"`
}

// before reports whether e was received before since (µs since the epoch).
func (e *entry) before(since int64) bool {
	t, err := strconv.ParseInt(e.Realtime, 10, 64)
	return err == nil && t < since
}

// decodeMessage returns MESSAGE, which journalctl prints as a string, as an
// array of bytes when it is not valid UTF-8 or holds control characters,
// or as null when it is missing.
func decodeMessage(raw json.RawMessage) ([]byte, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []byte(s), true
	}
	var bs []int
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, false
	}
	out := make([]byte, len(bs))
	for i, c := range bs {
		out[i] = byte(c)
	}
	return out, true
}

// lock takes the per-hash copy lock.
func (j *journal) lock() (func(), error) {
	unlock, err := core.LockFile(j.Lock)
	if err != nil {
		return nil, fmt.Errorf("systemd: lock log: %w", err)
	}
	return unlock, nil
}

// progress is what the cursor file holds: the cursor of the last entry
// copied (or, before the first copy, the time from which entries are the
// task's) and, while a copy is under way, the log file's identity and size
// before it. A copier killed between appending lines and saving the cursor
// leaves Busy set; the next copy then skips the bytes already appended
// instead of writing them twice.
type progress struct {
	Max    int64  `json:"max,omitempty"`     // the task's log size limit (BTL_LOG_MAX when it started)
	RunPID int    `json:"run_pid,omitempty"` // main PID of the last run whose start marker is in the log
	Cursor string `json:"cursor,omitempty"`
	Since  int64  `json:"since,omitempty"` // µs since the epoch; used while Cursor is ""
	Busy   bool   `json:"busy,omitempty"`
	Dev    uint64 `json:"dev,omitempty"`
	Ino    uint64 `json:"ino,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// progress reads the cursor file. A missing or unreadable record is a
// fresh start; anything but a regular file at its path (a FIFO, a
// directory, a symbolic link) is an error: copying from the start would
// write the whole journal again.
func (j *journal) progress() (progress, error) {
	var p progress
	b, err := readRecord(j.Cursor)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("systemd: log cursor: %w", err)
	}
	_ = json.Unmarshal(b, &p)
	return p, nil
}

// from returns the journalctl arguments that select the entries after p.
func (p progress) from() []string {
	switch {
	case p.Cursor != "":
		return []string{"--after-cursor=" + p.Cursor}
	case p.Since != 0:
		return []string{fmt.Sprintf("--since=@%d.%06d", p.Since/1e6, p.Since%1e6)}
	}
	return nil
}

// next is the progress record after a copy that ended at cursor (or
// copied nothing: "").
func (p progress) next(cursor string) progress {
	if cursor == "" {
		return progress{Max: p.Max, RunPID: p.RunPID, Cursor: p.Cursor, Since: p.Since}
	}
	return progress{Max: p.Max, RunPID: p.RunPID, Cursor: cursor}
}

// markRun notes, for a caller that holds the lock, that the start marker
// of the run whose main PID is pid is in the log.
func (j *journal) markRun(pid int) error {
	p, err := j.progress()
	if err != nil {
		return err
	}
	p.RunPID = pid
	return j.saveProgress(p)
}

// saveProgress replaces the cursor file atomically (a killed process
// leaves the old or the new one, never a mix).
func (j *journal) saveProgress(p progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := core.ReplaceFile(j.Cursor, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("systemd: save log cursor: %w", err)
	}
	return nil
}

// maxResume bounds how much of an interrupted copy is compared when resuming.
const maxResume = 16 << 20

// sync appends the entries after the saved cursor to the log file and
// saves the cursor of the last one, under the lock: every entry is copied
// once, whoever calls sync and however often.
func (j *journal) sync(ctx context.Context) error {
	unlock, err := j.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return j.syncLocked(ctx)
}

// syncLocked is sync for a caller that holds the lock.
func (j *journal) syncLocked(ctx context.Context) error {
	p, err := j.progress()
	if err != nil {
		return err
	}
	if p.Cursor == "" && p.Since == 0 && !p.Busy {
		// No record of where the task's entries begin: every start writes
		// one, and kill removes it with the task. Copying from the start
		// of the journal would write every earlier run's lines again.
		return nil
	}
	if p.Max != 0 {
		j.LogMax = p.Max
	}
	args := append([]string{"--all", "--output=json", "--output-fields=MESSAGE"}, p.from()...)
	if j.until != 0 {
		u := j.until - 1
		args = append(args, fmt.Sprintf("--until=@%d.%06d", u/1e6, u%1e6))
	}
	cmd := j.command(ctx, append(args, j.matches()...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("systemd: journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("systemd: journalctl: %w", err)
	}
	c := &copier{j: j, prev: p, skip: j.interrupted(p)}
	c.resume = c.skip != nil
	copyErr := c.copy(out)
	waitErr := cmd.Wait()
	if err := c.close(); err != nil && copyErr == nil {
		copyErr = err
	}
	if c.last != "" || p.Busy {
		if err := j.saveProgress(p.next(c.last)); err != nil {
			return err
		}
	}
	if copyErr != nil {
		return copyErr
	}
	if waitErr != nil {
		return fmt.Errorf("systemd: journalctl: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// interrupted returns what an interrupted copy already appended to the log
// file: the bytes past the size the progress record noted, when the file
// is still the same one.
func (j *journal) interrupted(p progress) []byte {
	if !p.Busy {
		return nil
	}
	f, err := regular.Open(j.LogFile, os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Dev != p.Dev || st.Ino != p.Ino || st.Size <= p.Size || st.Size-p.Size > maxResume {
		return nil
	}
	b := make([]byte, st.Size-p.Size)
	if _, err := f.ReadAt(b, p.Size); err != nil {
		return nil
	}
	return b
}

// copier appends journal messages to the log file.
type copier struct {
	j      *journal
	prev   progress // the progress record before this copy
	skip   []byte   // bytes an interrupted copy already appended
	resume bool     // whether skip was set at the start
	last   string   // cursor of the last entry written

	w  *logfile.LogWriter
	bw *bufio.Writer
}

// copy reads `journalctl -o json` output from r and appends each message
// as a line.
func (c *copier) copy(r io.Reader) error {
	defer func() { _, _ = io.Copy(io.Discard, r) }()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var e entry
			if err := json.Unmarshal(line, &e); err != nil {
				return fmt.Errorf("systemd: journalctl output: %w", err)
			}
			// An entry from before Since is not the task's (older
			// journalctl versions read --since to the second).
			early := c.prev.Cursor == "" && c.prev.Since != 0 && e.before(c.prev.Since)
			if msg, ok := decodeMessage(e.Message); ok && !early {
				if err := c.write(append(msg, '\n')); err != nil {
					return err
				}
			}
			c.last = e.Cursor
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// write appends b, less what an interrupted copy already wrote of it. The
// first write notes the log file's size in the progress record.
func (c *copier) write(b []byte) error {
	if len(c.skip) > 0 {
		n := min(len(b), len(c.skip))
		if bytes.Equal(b[:n], c.skip[:n]) {
			b, c.skip = b[n:], c.skip[n:]
		} else {
			c.skip = nil // not ours after all: write everything
		}
		if len(b) == 0 {
			return nil
		}
	}
	if c.w == nil {
		w, err := logfile.NewLogWriter(c.j.LogFile, c.j.LogMax)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(c.j.LogFile)
		if err != nil {
			_ = w.Close()
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		busy := c.prev.next("")
		busy.Busy, busy.Dev, busy.Ino, busy.Size = true, uint64(st.Dev), st.Ino, fi.Size()
		if c.resume {
			// Resuming an interrupted copy: it started at the same cursor
			// and size, and so does this one.
			busy = c.prev
		}
		if err := c.j.saveProgress(busy); err != nil {
			_ = w.Close()
			return err
		}
		// Writes reach the log writer in whole lines, at most the size
		// limit at a time (unless one line is longer), so that it rotates
		// on a line boundary and keeps each file within the limit.
		size := 32 << 10
		if c.j.LogMax > 0 && c.j.LogMax < int64(size) {
			size = max(int(c.j.LogMax), 16)
		}
		c.w, c.bw = w, bufio.NewWriterSize(w, size)
	}
	if len(b) > c.bw.Available() && c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return err
		}
	}
	_, err := c.bw.Write(b)
	return err
}

func (c *copier) close() error {
	if c.w == nil {
		return nil
	}
	err := c.bw.Flush()
	if cerr := c.w.Close(); err == nil {
		err = cerr
	}
	return err
}

// startAt makes a task whose hash has no cursor yet copy only the entries
// received from now on (so that the journal of an earlier task of the
// same unit name is not copied again), and records the task's log size
// limit for whoever copies. It costs no journalctl run.
func (j *journal) startAt(now time.Time) error {
	p, err := j.progress()
	if err != nil {
		return err
	}
	if p.Cursor == "" && p.Since == 0 {
		p.Since = now.UnixMicro()
	} else if p.Max == j.LogMax {
		return nil
	}
	p.Max = j.LogMax
	return j.saveProgress(p)
}

// errJournalUnreadable reports that the caller cannot read its own units'
// journal entries.
var errJournalUnreadable = errors.New("journal not readable")

// journalReadable is readable, probed once per Backend.
func (b *Backend) journalReadable(ctx context.Context) error {
	if !b.probed {
		b.readableErr = b.readable(ctx)
		b.probed = true
	}
	return b.readableErr
}

// readable checks that journald runs and that the caller can read its own
// entries (the user manager logs some when it starts): with volatile
// storage, journald keeps them in the system journal that only members of
// systemd-journal may read.
func (b *Backend) readable(ctx context.Context) error {
	if !isSocket(b.journalSocket) {
		return fmt.Errorf("%w: journald is not running (no %s)", errJournalUnreadable, b.journalSocket)
	}
	j := b.journalFor("", "", "", 0)
	cmd := j.command(ctx, "--lines=1", "--output=json", "--output-fields=MESSAGE", "_UID="+strconv.Itoa(j.UID))
	// A positive answer is remembered for a day, per journalctl command
	// line: a journal that was readable stays so, and each start spares a
	// journalctl run.
	sum := sha256.Sum256([]byte(strings.Join(cmd.Args, "\x00")))
	mark := filepath.Join(b.dirs.Run, "journal-readable-"+hex.EncodeToString(sum[:6]))
	if fi, err := os.Lstat(mark); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) < 24*time.Hour {
		return nil
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%w: %v: %s", errJournalUnreadable, err, strings.TrimSpace(stderr.String()))
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return fmt.Errorf("%w: no entries of uid %d are visible", errJournalUnreadable, j.UID)
	}
	// Replaced, never written through: a symbolic link or a FIFO at the
	// mark's path is replaced by the new mark.
	_ = core.ReplaceFile(mark, nil, 0o600)
	return nil
}

// appendLocked appends b to the log file, for a caller that holds the lock
// and has just synced (so that no interrupted copy is pending).
func (j *journal) appendLocked(b []byte) error {
	w, err := logfile.NewLogWriter(j.LogFile, j.LogMax)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}
