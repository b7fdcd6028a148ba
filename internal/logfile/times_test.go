package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTimesKeptBesideTheLog: each second in which the writer writes gets
// one stamp at the offset of its first byte; the times rotate with the
// log.
func TestTimesKeptBesideTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	w, err := NewLogWriter(path, 64)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	writes := []struct {
		s  string
		at time.Time
	}{
		{"a\n", t0},
		{"b\n", t0.Add(300 * time.Millisecond)}, // same second: no stamp
		{"c\n", t0.Add(2 * time.Second)},
	}
	for _, x := range writes {
		if _, err := w.WriteStamped([]byte(x.s), x.at); err != nil {
			t.Fatal(err)
		}
	}
	stamps, next := ReadTimes(path, 0)
	want := []Stamp{{0, t0.UTC()}, {4, t0.Add(2 * time.Second).UTC()}}
	if len(stamps) != len(want) || stamps[0] != want[0] || stamps[1] != want[1] {
		t.Fatalf("stamps %v, want %v", stamps, want)
	}
	for off, at := range map[int64]time.Time{0: t0, 3: t0, 4: t0.Add(2 * time.Second), 5: t0.Add(2 * time.Second)} {
		if got, ok := TimeAt(stamps, off); !ok || !got.Equal(at) {
			t.Errorf("TimeAt(%d) = %v, %v; want %v", off, got, ok, at)
		}
	}
	if more, _ := ReadTimes(path, next); len(more) != 0 {
		t.Errorf("read on from %d: %v", next, more)
	}
	// A line that does not fit rotates the log, and its times with it.
	if _, err := w.WriteStamped([]byte(strings.Repeat("z", 60)+"\n"), t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if old, _ := ReadTimes(path+".1", 0); len(old) != 2 {
		t.Errorf("rotated times: %v", old)
	}
	if cur, _ := ReadTimes(path, 0); len(cur) != 1 || cur[0] != (Stamp{0, t0.Add(3 * time.Second).UTC()}) {
		t.Errorf("times of the new log: %v", cur)
	}
	if fi, err := os.Stat(TimesPath(path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("times file: %v %v", fi, err)
	}
}
