package logread

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"btl/internal/logfile"
)

// marker is the start marker of a run of PID pid.
func marker(pid int, command string) string {
	return logfile.Marker{At: time.Unix(1_700_000_000+int64(pid), 0), PID: pid, Command: command}.Line()
}

// write makes a log at path with content.
func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logs makes a log and its rotated part with the contents given (none
// for ""), and returns the log's path.
func logs(t *testing.T, log, rotated string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.log")
	for p, content := range map[string]string{path: log, logfile.Rotated(path): rotated} {
		if content != "" {
			write(t, p, content)
		}
	}
	return path
}

func TestTailStart(t *testing.T) {
	for _, c := range []struct {
		content string
		n       int
		want    string // what is left from the offset
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"}, // a last line without its newline
		{"a\nb\nc", 2, "b\nc"},
		{"a", 1, "a"},
		{"\n\n\n", 2, "\n\n"}, // empty lines are lines
		{"a\n\nb\n", 2, "\nb\n"},
		{strings.Repeat("x", 3*block) + "\nlast", 1, "last"}, // across read blocks
		{"first\n" + strings.Repeat("y", 2*block+7) + "\n", 1, strings.Repeat("y", 2*block+7) + "\n"},
	} {
		r := strings.NewReader(c.content)
		at, err := TailStart(r, int64(len(c.content)), c.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.content[at:]; got != c.want {
			t.Errorf("TailStart(%.20q, %d) leaves %.20q, want %.20q", c.content, c.n, got, c.want)
		}
	}
}

func TestLastRun(t *testing.T) {
	long := strings.Repeat("z", RunWindow)
	m := marker(2, "x")
	// A marker whose first bytes end one read block before the log's
	// last byte, and the rest of it in the block read first.
	cut := "a\n" + m + strings.Repeat("y", block+11-len(m)-1) + "\n"
	short := strings.Repeat("a\n", 100_000)
	for _, c := range []struct {
		name    string
		content string
		want    string // what is left from the offset
		found   bool
	}{
		{"an empty log", "", "", false},
		{"no marker", "a\nb\n", "a\nb\n", false},
		{"one marker", marker(1, "x") + "a\n", marker(1, "x") + "a\n", true},
		{"output before the marker", "old\n" + marker(1, "x") + "a\n", marker(1, "x") + "a\n", true},
		{"several markers", marker(1, "x") + "a\n" + marker(2, "x") + "b\n" + marker(3, "x") + "c", marker(3, "x") + "c", true},
		{"a marker last", "a\n" + marker(2, "x"), marker(2, "x"), true},
		{"marker-like output", marker(1, "x") + "a\n[btl] soon started PID 9: y\n  " + marker(2, "y") + "[btl] exited 3\n",
			marker(1, "x") + "a\n[btl] soon started PID 9: y\n  " + marker(2, "y") + "[btl] exited 3\n", true},
		{"a marker past the window", marker(1, "x") + long, long, false},
		{"a marker in the window's last bytes", long + "\n" + marker(2, "x"), marker(2, "x"), true},
		{"a marker across read blocks", cut, cut[2:], true},
		{"many short lines", short + m + short, m + short, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			at, found, err := LastRun(strings.NewReader(c.content), int64(len(c.content)))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.content[at:]; got != c.want || found != c.found {
				t.Errorf("LastRun leaves %.40q, %v; want %.40q, %v", got, found, c.want, c.found)
			}
		})
	}
}

func TestLastRunLines(t *testing.T) {
	for _, c := range []struct {
		name    string
		log     string
		rotated string // logfile.Rotated(log)
		n       int
		want    []string
	}{
		{"no log", "", "", 5, nil},
		{"no marker", "a\nb\nc\n", "", 2, []string{"b", "c"}},
		{"one run", marker(1, "x") + "a\nb\n", "", 5, []string{"a", "b"}},
		{"the last run only", marker(1, "x") + "a\n" + marker(2, "x") + "b\nc", "", 5, []string{"b", "c"}},
		{"its last lines", marker(1, "x") + "a\nb\nc\n", "", 2, []string{"b", "c"}},
		{"as many lines as the run", marker(1, "x") + "a\nb\n", "", 2, []string{"a", "b"}},
		{"a run with no output", "a\n" + marker(1, "x"), "", 5, nil},
		// The writer rotated the run's marker away: what the log holds
		// is all this run's.
		{"the marker rotated away", "b\nc\n", marker(1, "x") + "a\n", 5, []string{"b", "c"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := logs(t, c.log, c.rotated)
			if got := LastRunLines(path, c.n); !slices.Equal(got, c.want) {
				t.Errorf("LastRunLines = %q, want %q", got, c.want)
			}
		})
	}
}

func TestFirstCommand(t *testing.T) {
	for _, c := range []struct {
		name, log, rotated, want string
	}{
		{"no log", "", "", ""},
		{"no marker", "a\n", "", ""},
		{"the first of several", "out\n" + marker(1, "npm run dev") + marker(2, "other"), "", "npm run dev"},
		{"a marker-like line is not one", "[btl] now started PID 1: fake\n" + marker(2, "real"), "", "real"},
		{"the log rotated past its marker", "a\n", marker(1, "make serve") + "b\n", "make serve"},
		{"the log before its rotated part", marker(2, "new") + "a\n", marker(1, "old") + "b\n", "new"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := logs(t, c.log, c.rotated)
			if got := FirstCommand(path); got != c.want {
				t.Errorf("FirstCommand = %q, want %q", got, c.want)
			}
		})
	}
}

func TestLastRunStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	if got := LastRunStart(path); got != 0 {
		t.Errorf("no log: %d", got)
	}
	content := "a\n" + marker(1, "x") + "b\n"
	write(t, path, content)
	if got, want := LastRunStart(path), int64(len("a\n")); got != want {
		t.Errorf("LastRunStart = %d, want %d", got, want)
	}
}

func TestSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	m1, m2 := marker(1, "x"), marker(100, "x") // a minute and a half apart
	write(t, path, m1+"a\n"+m2+"b\n")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// No times kept beside it: a line is as old as its run.
	for _, c := range []struct {
		since time.Time
		want  int64
	}{
		{time.Unix(1_700_000_000, 0), 0},
		{time.Unix(1_700_000_050, 0), int64(len(m1 + "a\n"))},
		{time.Unix(1_700_000_100, 0), int64(len(m1 + "a\n"))},
		{time.Unix(1_700_000_101, 0), int64(len(m1 + "a\n" + m2 + "b\n"))},
	} {
		got, err := Since(f, NewClock(path), c.since)
		if err != nil || got != c.want {
			t.Errorf("Since(%v) = %d, %v; want %d", c.since.Unix(), got, err, c.want)
		}
	}
}
