// Package regular is the one way btl reads and writes the files under its
// data directory: regular files only, opened without ever waiting on what
// else may sit at their path (a FIFO, a socket, a device), never through a
// symbolic link, read up to a bound, and replaced atomically.
package regular

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNotRegular reports a path that btl expected to be a regular file but
// is something else, such as a FIFO, a socket, a device, a directory or a
// symbolic link: opening or reading it could block btl, or act on another
// file than the one meant.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge reports a file larger than its reader's bound.
var ErrTooLarge = errors.New("file too large")

// kindError is ErrNotRegular with what the path holds instead.
type kindError struct {
	kind  string // "a FIFO", "a directory", ...
	errno error  // the open's own error, if any (ELOOP for a symbolic link)
}

func (e *kindError) Error() string { return "is " + e.kind + ", not a regular file" }

// Is makes a kindError match ErrNotRegular, and the open's own error.
func (e *kindError) Is(target error) bool {
	return target == ErrNotRegular || e.errno != nil && target == e.errno
}

// notRegular describes what is at path instead of a regular file.
func notRegular(op, path string, mode uint32, errno error) error {
	var kind string
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		kind = "a FIFO"
	case unix.S_IFDIR:
		kind = "a directory"
	case unix.S_IFLNK:
		kind = "a symbolic link"
	case unix.S_IFSOCK:
		kind = "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		kind = "a device"
	default:
		kind = "something else"
	}
	return &os.PathError{Op: op, Path: path, Err: &kindError{kind: kind, errno: errno}}
}

// lstatMode is the type of what sits at path, 0 when it cannot be told.
func lstatMode(path string) uint32 {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return 0
	}
	return uint32(st.Mode)
}

// Open opens path with flag (and perm when it creates the file), never
// through a symbolic link, and only if it is a regular file. The file is
// opened without blocking, so a FIFO or a device at path is an error
// wrapping ErrNotRegular instead of a wait for a writer or reader; so is
// a directory. A symbolic link is an error wrapping both ErrNotRegular and
// unix.ELOOP. Every such error names the path and what it holds.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	flags := flag | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, err := unix.Open(path, flags, uint32(perm.Perm()))
	for err == unix.EINTR {
		fd, err = unix.Open(path, flags, uint32(perm.Perm()))
	}
	switch {
	case err == unix.ELOOP:
		return nil, notRegular("open", path, unix.S_IFLNK, unix.ELOOP)
	case err == unix.ENXIO || err == unix.EOPNOTSUPP || err == unix.EISDIR:
		// A FIFO without a reader (write-only open), a socket, or a
		// directory opened for writing.
		return nil, notRegular("open", path, lstatMode(path), err)
	case err != nil:
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd)
		return nil, notRegular("open", path, uint32(st.Mode), nil)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// IsFile reports whether a regular file is at path (a symbolic link is
// not followed): for marks whose presence is what counts.
func IsFile(path string) bool {
	return lstatMode(path)&unix.S_IFMT == unix.S_IFREG
}

// ReadFile returns the content of the regular file at path (see Open),
// reading at most max bytes: a larger file is an error wrapping
// ErrTooLarge.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: %w (more than %d bytes)", path, ErrTooLarge, max)
	}
	return b, nil
}

// WriteFile writes data to the regular file at path (see Open), created
// with perm if missing and truncated otherwise. It is for files that are
// written once and read only after; ReplaceFile is for those that readers
// may look at while they change.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Open(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CreateTemp creates a new file for writing beside path, named
// .<base of path>.tmp-<random>, with mode perm: created exclusively, so
// nothing that was there already (a symbolic link, a FIFO) is opened.
// ReplaceFile renames such a file over path.
func CreateTemp(path string, perm os.FileMode) (*os.File, error) {
	// os.CreateTemp opens with O_CREATE|O_EXCL, which follows no link and
	// opens nothing that exists.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	// The umask may have taken bits off perm.
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// ReplaceFile replaces path with a regular file holding data, with mode
// perm: it writes a temporary file in the same directory (CreateTemp),
// syncs it when sync is set, and renames it over path, so readers see
// either the old content or the new, never a mix; with sync, also after a
// crash of the system. Whatever was at path (a symbolic link, a FIFO) is
// replaced, never written through; a directory there is an error wrapping
// ErrNotRegular.
func ReplaceFile(path string, data []byte, perm os.FileMode, sync bool) error {
	f, err := CreateTemp(path, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		if mode := lstatMode(path); mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("write %s: %w", path, notRegular("rename", path, mode, err))
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}

// WriteFileAtomic is ReplaceFile with the sync: for records that must
// survive a crash of the system.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return ReplaceFile(path, data, perm, true)
}
