package systemd

import (
	"context"
	"os"
	osuser "os/user"
	"path/filepath"

	"btl/core"
)

var (
	_ core.Describer = (*Backend)(nil)
	_ core.Hinter    = (*Backend)(nil)
)

// Describe returns the systemctl command that shows t's unit.
func (b *Backend) Describe(ctx context.Context, t core.Task) string {
	return "systemctl --user status " + t.Unit
}

// StartHint tells, once per data directory, a user on ssh whose tasks
// would end at logout how to keep them (lingering).
func (b *Backend) StartHint(t core.Task) string {
	if os.Getenv("SSH_CONNECTION") == "" && os.Getenv("SSH_TTY") == "" {
		return ""
	}
	u, err := osuser.Current()
	if err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join("/var/lib/systemd/linger", u.Username)); err == nil {
		return ""
	}
	seen := filepath.Join(b.dirs.Data, "linger-hint-shown")
	if _, err := os.Stat(seen); err == nil {
		return ""
	}
	if f, err := os.OpenFile(seen, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	}
	return "systemd ends your tasks when you log out of ssh; to keep them running, run: loginctl enable-linger " + u.Username
}
