package logread

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"btl/internal/logfile"
	"btl/internal/regular"
)

// step changes the log at path, and says what the next Poll copies.
type step struct {
	do   func(t *testing.T, path string)
	want string
}

func appendTo(s string) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
}

// rotate does what the writer does: the log becomes its rotated part.
func rotate(t *testing.T, path string) {
	t.Helper()
	if err := os.Rename(path, logfile.Rotated(path)); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string) {
	t.Helper()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

func nothing(*testing.T, string) {}

// both runs each of do in turn.
func both(do ...func(*testing.T, string)) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		for _, d := range do {
			d(t, path)
		}
	}
}

func TestFollower(t *testing.T) {
	for _, c := range []struct {
		name     string
		initial  string // the log before the Follower starts; "" for none
		place    func(*os.File) error
		steps    []step
		restarts int
	}{
		{name: "from the start", initial: "a\n", steps: []step{
			{nothing, "a\n"},
			{appendTo("b\n"), "b\n"},
			{nothing, ""},
			{appendTo("no end yet"), "no end yet"},
			{appendTo(", now\n"), ", now\n"},
		}},
		{name: "from its last lines", initial: "a\nb\nc\n", place: func(f *os.File) error { return SeekTail(f, 2) }, steps: []step{
			{nothing, "b\nc\n"},
			{appendTo("d\n"), "d\n"},
		}},
		{name: "from its last run", initial: marker(1, "x") + "a\n" + marker(2, "x") + "b\n", place: SeekLastRun, steps: []step{
			{nothing, marker(2, "x") + "b\n"},
		}},
		{name: "a log that appears late", steps: []step{
			{nothing, ""},
			{nothing, ""},
			{appendTo("first\n"), "first\n"},
			{appendTo("second\n"), "second\n"},
		}},
		{name: "a log that appears late, placed", place: func(f *os.File) error { return SeekTail(f, 1) }, steps: []step{
			{nothing, ""},
			{appendTo("a\nb\n"), "b\n"},
		}},
		{name: "rotated", initial: "a\n", restarts: 1, steps: []step{
			{nothing, "a\n"},
			// The old file's rest, then the new file from its start.
			{both(appendTo("b\n"), rotate, appendTo("c\n")), "b\nc\n"},
			{appendTo("d\n"), "d\n"},
		}},
		{name: "rotated, the new file not there yet", initial: "a\n", restarts: 1, steps: []step{
			{nothing, "a\n"},
			{both(appendTo("b\n"), rotate), "b\n"},
			{nothing, ""},
			{appendTo("c\n"), "c\n"},
		}},
		{name: "a run's marker split from its output by rotation", initial: "old\n", restarts: 1, steps: []step{
			{nothing, "old\n"},
			{both(appendTo(marker(1, "x")), rotate, appendTo("out\n")), marker(1, "x") + "out\n"},
		}},
		{name: "rotated twice", initial: "a\n", restarts: 2, steps: []step{
			{nothing, "a\n"},
			{both(rotate, appendTo("b\n")), "b\n"},
			{both(appendTo("c\n"), rotate, appendTo("d\n")), "c\nd\n"},
		}},
		{name: "truncated", initial: "a\nb\n", restarts: 1, steps: []step{
			{nothing, "a\nb\n"},
			{both(truncate, appendTo("c\n")), "c\n"},
			{appendTo("d\n"), "d\n"},
		}},
		{name: "truncated to nothing", initial: "a\n", restarts: 1, steps: []step{
			{nothing, "a\n"},
			{truncate, ""},
			{appendTo("b\n"), "b\n"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.log")
			if c.initial != "" {
				write(t, path, c.initial)
			}
			fl := Follow(path, c.place)
			defer fl.Close()
			restarts := 0
			fl.OnRestart = func() { restarts++ }
			for i, s := range c.steps {
				s.do(t, path)
				var out strings.Builder
				if err := fl.Poll(&out); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if out.String() != s.want {
					t.Errorf("step %d: copied %q, want %q", i, out.String(), s.want)
				}
			}
			if restarts != c.restarts {
				t.Errorf("%d restarts, want %d", restarts, c.restarts)
			}
		})
	}
}

func TestFollowerNotRegular(t *testing.T) {
	dir := t.TempDir()
	fl := Follow(dir, nil) // a directory
	var out strings.Builder
	if err := fl.Poll(&out); !errors.Is(err, regular.ErrNotRegular) {
		t.Errorf("Poll of a directory: %v", err)
	}
}

func TestWaitOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	fl := Follow(path, nil)
	defer fl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fl.WaitOpen(ctx, time.Hour); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("WaitOpen, no log, ctx done: %v", err)
	}
	write(t, path, "a\n")
	if err := fl.WaitOpen(context.Background(), time.Hour); err != nil || fl.File() == nil {
		t.Fatalf("WaitOpen of a log that exists: %v", err)
	}
}

// TestRun: Run copies until the end is reported, and what was written
// before the end is copied; it stops without an end when ctx is done.
func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	fl := Follow(path, nil)
	defer fl.Close()
	tick := make(chan time.Time)
	asked := make(chan int)
	var out strings.Builder
	type result struct {
		over bool
		err  error
	}
	res := make(chan result, 1)
	n := 0
	go func() {
		over, err := fl.Run(context.Background(), &out, tick, func() bool {
			n++
			asked <- n
			// The task writes its last line and ends before the third look.
			return n == 3
		})
		res <- result{over, err}
	}()
	<-asked // 1: no log yet
	tick <- time.Time{}
	<-asked // 2
	appendTo("last words\n")(t, path)
	tick <- time.Time{}
	<-asked // 3: over
	r := <-res
	if !r.over || r.err != nil || out.String() != "last words\n" {
		t.Errorf("Run = %v, %v, copied %q", r.over, r.err, out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fl2 := Follow(path, nil)
	defer fl2.Close()
	over, err := fl2.Run(ctx, &out, nil, func() bool { return false })
	if over || err != nil {
		t.Errorf("Run, ctx done: %v, %v", over, err)
	}
}
