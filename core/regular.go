package core

import (
	"os"

	"btl/internal/regular"
)

// ErrNotRegular reports a path that btl expected to be a regular file but
// is something else, such as a FIFO, a socket or a device.
var ErrNotRegular = regular.ErrNotRegular

// OpenRegular opens path only if it is a regular file, never waiting on a
// FIFO or device and never through a symbolic link (see regular.Open).
func OpenRegular(path string, flag int, perm os.FileMode) (*os.File, error) {
	return regular.Open(path, flag, perm)
}
