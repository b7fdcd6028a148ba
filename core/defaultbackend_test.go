package core

import (
	"os"
	"path/filepath"
	"testing"
)

// An entry that names no backend gets the Store's DefaultBackend; one that
// names a backend keeps it.
func TestStoreDefaultBackend(t *testing.T) {
	s := &Store{Dir: t.TempDir(), DefaultBackend: "fork"}
	state := `{"processes": {
		"0123456789abcdef": {"pid": 1, "user_id": 1, "command": "a", "cwd": "/", "started_at": "2026-01-01T00:00:00Z", "log_file": "/x"},
		"fedcba9876543210": {"pid": 2, "user_id": 1, "command": "b", "cwd": "/", "started_at": "2026-01-01T00:00:00Z", "log_file": "/y", "backend": "systemd"}}}`
	if err := os.WriteFile(filepath.Join(s.Dir, "state.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	for hash, want := range map[string]string{"0123456789abcdef": "fork", "fedcba9876543210": "systemd"} {
		if got := st.Processes[hash].BackendName(); got != want {
			t.Errorf("backend of %s = %q, want %q", hash, got, want)
		}
	}
}
