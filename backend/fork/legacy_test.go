package fork

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"btl/core"
)

// TestLegacyRecords: a task whose supervisor an earlier btl started left
// the records of that version (<token>.exit, <token>.runs) instead of the
// record of runs; its status reads the same from them.
func TestLegacyRecords(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string // by extension
		want  core.Status
	}{
		{"exit", map[string]string{".exit": `{"state":"exited","code":3,"pid":4000000}`},
			core.Status{State: core.Exited, Code: 3, PID: 4000000}},
		{"crash loop", map[string]string{
			".exit": `{"state":"killed","signal":9,"pid":4000001,"restarts":2,"last_exit":"killed (SIGKILL)","crash_loop":true}`,
			".runs": `{"pid":4000001,"start":1,"restarts":2,"last_exit":"exited 1","policy":"on-failure:2"}`},
			core.Status{State: core.Signaled, Signal: 9, PID: 4000001, Restarts: 2, LastExit: "killed (SIGKILL)", CrashLoop: true}},
		{"unreadable", map[string]string{".exit": `{`}, core.Status{State: core.Gone}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dirs := core.DirsAt(t.TempDir())
			if err := dirs.Ensure(); err != nil {
				t.Fatal(err)
			}
			token := strings.Repeat("c", core.HashLen) + "-0011223344556677"
			for ext, content := range c.files {
				if err := os.WriteFile(filepath.Join(dirs.Run, token+ext), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			b := New(dirs)
			task := core.Task{Hash: token[:core.HashLen], Token: token, PID: 4000000, Backend: Name}
			got, err := b.Inspect(context.Background(), task)
			if err != nil || got != c.want {
				t.Errorf("Inspect = %+v, %v; want %+v", got, err, c.want)
			}
			if err := b.Release(context.Background(), task); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(dirs.Run); len(ents) != 0 {
				t.Errorf("Release left %d files", len(ents))
			}
		})
	}
}
