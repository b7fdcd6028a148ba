package core

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// EnvFile is where the environment of the task with the given hash is
// recorded, so that btl restart can run it again as it was started.
func (d Dirs) EnvFile(hash string) string { return filepath.Join(d.Run, hash+".env") }

// saveEnv records env (without btl's own per-start variables) for hash, as
// NUL-separated entries, mode 0600. It is not synced: losing it in a crash
// costs only a restart's exact environment.
func (d Dirs) saveEnv(hash string, env []string) error {
	var b bytes.Buffer
	for _, kv := range env {
		if strings.HasPrefix(kv, EnvHash+"=") || strings.HasPrefix(kv, EnvInstance+"=") {
			continue
		}
		b.WriteString(kv)
		b.WriteByte(0)
	}
	// A new file every time (whatever was left at tmp, even a FIFO, is
	// removed first), so nothing can make the write wait.
	tmp := d.EnvFile(hash) + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("record environment: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record environment: %w", err)
	}
	return os.Rename(tmp, d.EnvFile(hash))
}

// LoadEnv returns the environment recorded when the task with the given
// hash was last started.
func (d Dirs) LoadEnv(hash string) ([]string, error) {
	f, err := OpenRegular(d.EnvFile(hash), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	var env []string
	for kv := range bytes.SplitSeq(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	return env, nil
}
