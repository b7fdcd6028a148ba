// Package regular opens files that must be regular files without ever
// waiting on what else may sit at their path: a FIFO, a socket, a device.
package regular

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRegular reports a path that btl expected to be a regular file but
// is something else, such as a FIFO, a socket or a device, which could
// block btl when opened or read.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path with flag (and perm when it creates the file),
// never through a symbolic link, and only if it is a regular file. The
// file is opened without blocking, so a FIFO or a device at path is an
// error wrapping ErrNotRegular instead of a wait for a writer or reader.
// A symbolic link is an error wrapping unix.ELOOP.
func Open(path string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(perm.Perm()))
	for err == unix.EINTR {
		fd, err = unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(perm.Perm()))
	}
	switch {
	case err == unix.ENXIO || err == unix.EOPNOTSUPP:
		// A FIFO without a reader (write-only open) or a socket.
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
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
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
