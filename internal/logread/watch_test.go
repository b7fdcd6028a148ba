package logread

import (
	"path/filepath"
	"regexp"
	"testing"
)

func TestWatch(t *testing.T) {
	type look struct {
		do    func(*testing.T, string)
		match string // "" for none yet
	}
	m := marker(7, "serve")
	for _, c := range []struct {
		name    string
		initial string // the log before the run; "" for none
		looks   []look
	}{
		{"the run's line", "old ready\n", []look{
			{nothing, ""},
			{appendTo(m), ""},
			{appendTo("starting\n"), ""},
			{appendTo("ready on :80\n"), "ready on :80"},
			{appendTo("ready again\n"), "ready on :80"},
		}},
		{"the last instance's output before the run's marker", "", []look{
			{appendTo("ready (old)\n"), ""},
			{appendTo(m + "ready (new)\n"), "ready (new)"},
		}},
		{"a marker-like line is not the run's start", "", []look{
			{appendTo("[btl] soon started PID 7: x\nready\n"), ""},
			{appendTo(m + "ready\n"), "ready"},
		}},
		{"a line not ended yet", "", []look{
			{appendTo(m + "ready, and"), "ready, and"},
		}},
		{"a log that appears late", "", []look{
			{nothing, ""},
			{appendTo(m), ""},
			{appendTo("ready\n"), "ready"},
		}},
		{"the marker before a rotation, the line after", "old\n", []look{
			{nothing, ""},
			{both(appendTo(m), rotate, appendTo("ready\n")), "ready"},
		}},
		{"the line in the rest of the rotated file", "old\n", []look{
			{both(appendTo(m+"ready\n"), rotate, appendTo("more\n")), "ready"},
		}},
		{"truncated", "old output\n", []look{
			{both(truncate, appendTo("ready\n")), "ready"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.log")
			if c.initial != "" {
				write(t, path, c.initial)
			}
			w := NewWatch(path, int64(len(c.initial)), regexp.MustCompile("ready"))
			defer w.Close()
			for i, l := range c.looks {
				l.do(t, path)
				line, ok := w.Match()
				if line != l.match || ok != (l.match != "") {
					t.Errorf("look %d: %q, %v; want %q", i, line, ok, l.match)
				}
			}
		})
	}
}

// TestWatchRotatedBeforeOpen: a log smaller than the run's offset was
// rotated since; the run's lines are read from its start.
func TestWatchRotatedBeforeOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	write(t, path, "ready\n")
	w := NewWatch(path, 100, regexp.MustCompile("ready"))
	defer w.Close()
	if line, ok := w.Match(); !ok || line != "ready" {
		t.Errorf("Match = %q, %v", line, ok)
	}
}
