package core

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
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

// removeTaskFiles removes what btl keeps for the task with the given hash:
// its log files and its runtime files, every one of which is named after
// the hash.
func (d Dirs) removeTaskFiles(hash string) error {
	if !ValidHash(hash) {
		return fmt.Errorf("%w %q", ErrBadHash, hash)
	}
	files := []string{d.LogFile(hash), d.LogFile(hash) + ".1"}
	run, _ := filepath.Glob(filepath.Join(d.Run, hash+"*"))
	var errs []error
	for _, f := range append(files, run...) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// SelfExe returns exe, or, when exe is empty, the path of the running
// executable: btl re-executes itself as a task's helper (supervisor,
// launcher, journal mirror, log pump).
func SelfExe(exe string) (string, error) {
	if exe != "" {
		return exe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	return exe, nil
}
