package systemd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"btl/core"
)

// TestLegacyRecords: the exit records an earlier btl's log agent wrote
// (<hash>.exit, <hash>.last) read as the record of runs they amount to.
func TestLegacyRecords(t *testing.T) {
	cases := []struct {
		name     string
		files    map[string]string // by extension
		pid      int
		ended    string // how the last run that ended, ended; "": no record
		restarts int
	}{
		{"exit", map[string]string{".exit": "4000 exited 3\n"}, 4000, "exited 3", 0},
		{"killed after restarts", map[string]string{".exit": "4001 killed 15\nrestarts 2\n", ".last": "killed (SIGTERM)\n"}, 4001, "killed (SIGTERM)", 2},
		{"running after a restart", map[string]string{".last": "killed (SIGKILL)\n"}, 0, "killed (SIGKILL)", 0},
		{"none", nil, 0, "", 0},
		{"unreadable", map[string]string{".exit": "nonsense"}, 0, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := t.TempDir()
			hash := strings.Repeat("e", core.HashLen)
			for ext, content := range c.files {
				if err := os.WriteFile(filepath.Join(run, hash+ext), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, ok := readLegacy(run, hash)
			if ok != (c.ended != "") {
				t.Fatalf("readLegacy = %+v, %v", r, ok)
			}
			if !ok {
				return
			}
			if r.PID != c.pid || r.Ended.String() != c.ended || r.Restarts() != c.restarts {
				t.Errorf("readLegacy = PID %d, ended %s, %d restarts; want %d, %s, %d", r.PID, r.Ended, r.Restarts(), c.pid, c.ended, c.restarts)
			}
		})
	}
}
