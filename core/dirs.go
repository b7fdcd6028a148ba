package core

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"btl/internal/logfile"
)

// Dirs are the directories btl keeps its files in.
type Dirs struct {
	Data string // state.json and state.lock
	Logs string // <hash>.log
	Run  string // per-task runtime files of backends
}

// DefaultDirs returns $XDG_DATA_HOME/btl, or ~/.local/share/btl, and the
// directories below it.
func DefaultDirs() (Dirs, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return Dirs{}, fmt.Errorf("find data directory: %w", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return DirsAt(filepath.Join(base, "btl")), nil
}

// DirsAt returns the layout below data.
func DirsAt(data string) Dirs {
	return Dirs{Data: data, Logs: filepath.Join(data, "logs"), Run: filepath.Join(data, "run")}
}

// LogFile is the log file of the task with the given hash.
func (d Dirs) LogFile(hash string) string { return filepath.Join(d.Logs, hash+".log") }

// LogHash returns the hash of the task whose log file (not its rotated
// part or times) is named name, and false for any other name.
func LogHash(name string) (string, bool) {
	h, ok := strings.CutSuffix(name, ".log")
	return h, ok && ValidHash(h)
}

// removeTaskFiles removes what btl keeps for the task with the given hash:
// its log files and its runtime files, every one of which is named after
// the hash.
func (d Dirs) removeTaskFiles(hash string) error {
	if !ValidHash(hash) {
		return fmt.Errorf("%w %q", ErrBadHash, hash)
	}
	log := d.LogFile(hash)
	return errors.Join(removeFiles(log, logfile.Rotated(log), logfile.TimesPath(log), logfile.TimesPath(logfile.Rotated(log))), d.removeRunFiles(hash))
}

// removeRunFiles removes the runtime files of the task with the given
// hash: its recorded environment, exit records, cursors and locks, all
// named after the hash or after an instance token, which starts with it.
func (d Dirs) removeRunFiles(hash string) error {
	if !ValidHash(hash) {
		return fmt.Errorf("%w %q", ErrBadHash, hash)
	}
	run, _ := filepath.Glob(filepath.Join(d.Run, hash+"*"))
	return removeFiles(run...)
}

func removeFiles(files ...string) error {
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweepAge is how old a runtime file of no task must be before sweep
// removes it: a launchd bootout mark means something for a few seconds
// after its task was forgotten.
const sweepAge = time.Minute

// sweep removes the log files and runtime files that belong to no task
// tracked (tracked reports whether a hash is): what a forgotten task left.
// Files named after no hash (locks and marks shared by every task) stay.
func (d Dirs) sweep(tracked func(hash string) bool) error {
	var doomed []string
	logs, _ := os.ReadDir(d.Logs)
	for _, e := range logs {
		name := e.Name()
		// <hash>.log, .log.1 and their times, .log.times and .log.1.times
		if h, ok := LogHash(logfile.LogOf(name)); ok && !tracked(h) {
			doomed = append(doomed, filepath.Join(d.Logs, name))
		}
	}
	run, _ := os.ReadDir(d.Run)
	for _, e := range run {
		h, marked := runFileOwner(e.Name())
		if h == "" || tracked(h) {
			continue
		}
		if marked {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < sweepAge {
				continue
			}
		}
		doomed = append(doomed, filepath.Join(d.Run, e.Name()))
	}
	return removeFiles(doomed...)
}

// runFileOwner returns the hash of the task a file in the run directory
// belongs to, "" when it belongs to none (a lock or mark shared by all).
// Per-task files are named <hash>.<kind> or <token>.<kind> (a token
// starts with <hash>-); a launchd bootout mark, <target>_btl.<hash>.bootout,
// is reported with marked set: it means something for a while after its
// task is gone.
func runFileOwner(name string) (hash string, marked bool) {
	if svc, ok := strings.CutSuffix(name, ".bootout"); ok {
		if i := strings.LastIndex(svc, "btl."); i >= 0 && ValidHash(svc[i+4:]) {
			return svc[i+4:], true
		}
		return "", false
	}
	if len(name) > HashLen && ValidHash(name[:HashLen]) && (name[HashLen] == '.' || name[HashLen] == '-') {
		return name[:HashLen], false
	}
	return "", false
}

// ErrUnsafeDir reports a directory btl will not use: owned by another user,
// writable by others, or not a directory.
var ErrUnsafeDir = errors.New("unsafe directory")

// Ensure creates the directories (mode 0700) and checks that each is a
// real directory owned by the caller and writable by nobody else.
func (d Dirs) Ensure() error {
	for _, dir := range []string{d.Data, d.Logs, d.Run} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		if err := checkDir(dir); err != nil {
			return err
		}
	}
	return nil
}

func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not by you", ErrUnsafeDir, dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by group or others (chmod 700 %s)", ErrUnsafeDir, dir, dir)
	}
	return nil
}
