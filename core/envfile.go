package core

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"btl/internal/regular"
)

// MaxEnvSize bounds how much of a recorded environment btl reads: far
// more than a system lets a program's environment be.
const MaxEnvSize = 16 << 20

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
	if err := regular.ReplaceFile(d.EnvFile(hash), b.Bytes(), 0o600, false); err != nil {
		return fmt.Errorf("record environment: %w", err)
	}
	return nil
}

// LoadEnv returns the environment recorded when the task with the given
// hash was last started.
func (d Dirs) LoadEnv(hash string) ([]string, error) {
	b, err := regular.ReadFile(d.EnvFile(hash), MaxEnvSize)
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
