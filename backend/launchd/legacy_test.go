package launchd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"btl/core"
)

// TestLegacyRecords: a task an earlier btl started keeps the records of
// that version's launcher (<token>.runs, <token>.crashloop) until its next
// launch; they read as the record of runs they amount to.
func TestLegacyRecords(t *testing.T) {
	last := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name  string
		files map[string]string // by extension
		want  core.Runs
	}{
		{"runs", map[string]string{
			".runs":    `{"runs":3,"in_row":2,"last":"2026-01-02T03:04:05Z","last_exit":"exited 1"}`,
			".launchd": `{"pid":4000002,"start":9}`},
			core.Runs{Runs: 3, InRow: 2, Began: last, LastExit: "exited 1", PID: 4000002, Start: 9}},
		{"crash loop", map[string]string{
			".runs":      `{"runs":3,"in_row":2,"last":"2026-01-02T03:04:05Z","last_exit":"exited 1"}`,
			".crashloop": `{"status":{"state":"exited","code":1,"pid":4000003},"restarts":2}`},
			core.Runs{Runs: 3, PID: 4000003, Ended: &core.Status{State: core.Exited, Code: 1}, Final: true, CrashLoop: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dirs := core.DirsAt(t.TempDir())
			if err := dirs.Ensure(); err != nil {
				t.Fatal(err)
			}
			token := strings.Repeat("d", core.HashLen) + "-0011223344556677"
			for ext, content := range c.files {
				if err := os.WriteFile(filepath.Join(dirs.Run, token+ext), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			report := reportPath(dirs, token)
			got, err := readRuns(report)
			if err != nil {
				t.Fatal(err)
			}
			gotSt, gotFinal := got.Status()
			wantSt, wantFinal := c.want.Status()
			if gotSt != wantSt || gotFinal != wantFinal || got.InRow != c.want.InRow || !got.Began.Equal(c.want.Began) {
				t.Errorf("readRuns = %+v; want %+v", got, c.want)
			}
			removeRestartFiles(report)
			for _, e := range []string{".runs", ".crashloop", ".record"} {
				if _, err := os.Lstat(filepath.Join(dirs.Run, token+e)); err == nil {
					t.Errorf("%s left", e)
				}
			}
		})
	}
}
