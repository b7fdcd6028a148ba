package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestManagerKeep: with Keep, Run keeps a running instance (no stop, no
// start) and starts one that ended; without it, it replaces.
func TestManagerKeep(t *testing.T) {
	b := newMem("fork")
	m := testManager(t, b)
	dir := t.TempDir()
	first, _ := m.mustRun(t, dir, "sleep", "1")
	var asked []Status
	m.Keep = func(old *Task, st Status) bool {
		asked = append(asked, st)
		return st.Alive()
	}
	b.calls = nil
	kept, replaced := m.mustRun(t, dir, "sleep", "1")
	if kept.Token != first.Token || replaced != nil || slices.ContainsFunc(b.calls, func(c string) bool { return !strings.HasPrefix(c, "inspect ") }) {
		t.Errorf("a running instance was not kept: %+v, calls %v", kept, b.calls)
	}
	delete(b.running, first.Token) // it ends
	again, _ := m.mustRun(t, dir, "sleep", "1")
	if again.Token == first.Token || len(asked) != 2 || asked[1].Alive() {
		t.Errorf("an ended instance was kept: %+v, asked %v", again, asked)
	}
}

// TestManagerWatcher: a watcher's replace is refused once the record
// names another watcher, and a record keeps its env files and watch.
func TestManagerWatcher(t *testing.T) {
	b := newMem("fork")
	m := testManager(t, b)
	dir := t.TempDir()
	spec, err := m.Prepare([]string{"sleep", "1"}, dir, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	spec.EnvFiles = []string{filepath.Join(dir, ".env")}
	spec.Watch = &Watch{Paths: []string{dir}}
	m.OnStarted = func(t *Task) { t.Watch.Watcher = &Proc{PID: 1, Start: 7} }
	started, _, err := m.Run(context.Background(), spec)
	if err != nil || started.Watch.Watcher == nil || len(started.EnvFiles) != 1 {
		t.Fatalf("Run: %v, %+v", err, started)
	}
	m.OnStarted = nil
	other := spec
	other.Watch = &Watch{Paths: []string{dir}, Watcher: &Proc{PID: 2, Start: 9}}
	if _, _, err := m.Run(context.Background(), other); !errors.Is(err, ErrNotWatcher) {
		t.Errorf("a watcher the record does not name replaced the task: %v", err)
	}
	own := spec
	own.Watch = &Watch{Paths: []string{dir}, Watcher: &Proc{PID: 1, Start: 7}, Replaces: 1}
	got, replaced, err := m.Run(context.Background(), own)
	if err != nil || replaced == nil || got.Watch.Replaces != 1 || got.Watch.Watcher == nil {
		t.Errorf("the recorded watcher's replace: %v, %+v", err, got)
	}
}

func TestReadEnvFile(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []string
		bad      bool
	}{
		{"plain", "A=1\nB = two \n", []string{"A=1", "B=two"}, false},
		{"comments and export", "# c\n\nexport A=1 # note\n", []string{"A=1"}, false},
		{"single quotes", "A='x # y \\n'\n", []string{`A=x # y \n`}, false},
		{"double quotes", `A="x\ny\t\"z\"\\"` + "\n", []string{"A=x\ny\t\"z\"\\"}, false},
		{"empty", "A=\n", []string{"A="}, false},
		{"no equals", "A\n", nil, true},
		{"bad name", "1A=x\n", nil, true},
		{"open quote", "A='x\n", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), ".env")
			if err := os.WriteFile(p, []byte(c.in), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadEnvFile(p)
			if c.bad {
				if !errors.Is(err, ErrBadEnvFile) || !strings.Contains(err.Error(), p+":1") {
					t.Errorf("want a bad env file error naming the line, got %v", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
