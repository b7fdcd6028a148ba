package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/internal/regular"
)

func TestLogWriterRotatesOnLines(t *testing.T) {
	line := func(i int) string { return strings.Repeat("x", 40+i%50) + "\n" }
	var many strings.Builder
	for i := range 120 {
		many.WriteString(line(i))
	}
	long := strings.Repeat("y", 2500) + "\n"
	for _, tc := range []struct {
		name   string
		writes []string
		// longest is the longest line; a file may pass the cap only by a
		// line that reached the writer in parts
		split bool
	}{
		{name: "one big write of many lines", writes: []string{many.String()}},
		{name: "line by line", writes: strings.SplitAfter(many.String(), "\n")},
		{name: "lines split across writes", writes: chunks(many.String(), 333), split: true},
		{name: "a line longer than the cap", writes: []string{"a\n", long, "b\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const max = 1 << 10
			path := filepath.Join(t.TempDir(), "x.log")
			w, err := NewLogWriter(path, max)
			if err != nil {
				t.Fatal(err)
			}
			var all string
			rotations := 0
			for _, s := range tc.writes {
				before, _ := os.Stat(path)
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
				all += s
				if after, _ := os.Stat(path); !os.SameFile(before, after) {
					rotations++
				}
			}
			w.Close()
			old, _ := os.ReadFile(path + ".1")
			cur, _ := os.ReadFile(path)
			if !strings.HasSuffix(all, string(old)+string(cur)) {
				t.Fatalf("the files do not hold the newest output in order")
			}
			if rotations == 0 && len(all) > max {
				t.Fatalf("never rotated")
			}
			limit := max
			if tc.split {
				limit = max + 90 // the longest line
			}
			for name, b := range map[string][]byte{"x.log.1": old, "x.log": cur} {
				if len(b) > limit {
					t.Errorf("%s is %d bytes, over %d", name, len(b), limit)
				}
				if strings.Contains(tc.name, "longer") {
					continue
				}
				if len(b) > 0 && (b[len(b)-1] != '\n' || bytes.Contains(b, []byte("\n\n"))) {
					t.Errorf("%s does not hold whole lines: %q", name, b)
				}
				if name == "x.log" && len(old) > 0 && old[len(old)-1] != '\n' {
					t.Errorf("x.log.1 ends in the middle of a line")
				}
			}
		})
	}
}

func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

// A FIFO at a log's path, with or without a reader, is refused at once
// with regular.ErrNotRegular: opening it for writing would wait for a reader, and
// writing would wait for it to read.
func TestLogWriterRefusesFIFO(t *testing.T) {
	for _, reader := range []bool{false, true} {
		t.Run(fmt.Sprintf("reader=%v", reader), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.log")
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if reader {
				r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
			}
			done := make(chan error, 1)
			go func() {
				w, err := NewLogWriter(path, 1<<10)
				if err == nil {
					_, err = w.Write([]byte("x\n"))
					w.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, regular.ErrNotRegular) || strings.Contains(err.Error(), "\n") {
					t.Errorf("NewLogWriter on a FIFO = %v, want one line wrapping regular.ErrNotRegular", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("NewLogWriter on a FIFO did not return within 10s")
			}
		})
	}
}
