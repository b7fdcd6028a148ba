package core

import (
	"errors"
	"os"
	"testing"
)

// TestStoreIntent: the task a start records before it runs is in the
// state of every later reader even when the start never saved (btl ended
// in between), and the next locked save moves it into state.json and
// removes the intent file; an intent that state.json already holds is
// dropped.
func TestStoreIntent(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: dir}
	a := &Task{Hash: "aaaaaaaaaaaaaaaa", PID: 5, Command: "a", Token: "aaaaaaaaaaaaaaaa-1"}
	if err := s.Update(func(st *State) error { st.Processes[a.Hash] = a; return nil }); err != nil {
		t.Fatal(err)
	}
	// A start that ends after its intent: no save follows.
	st, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	b := &Task{Hash: "bbbbbbbbbbbbbbbb", Command: "b", Token: "bbbbbbbbbbbbbbbb-1", Status: &Status{State: Starting}}
	st.Processes[b.Hash] = b
	if err := s.checkpoint(st, b); err != nil {
		t.Fatal(err)
	}
	onDisk := func() *State {
		t.Helper()
		raw, err := os.ReadFile(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		st, err := DecodeState(raw)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if _, ok := onDisk().Processes[b.Hash]; ok {
		t.Fatal("the intent went into state.json before the start's save")
	}
	for range 2 { // an unlocked read leaves the file in place
		st, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Processes[b.Hash]; got == nil || got.Token != b.Token || got.Status == nil || got.Status.State != Starting {
			t.Fatalf("Read after an unsaved start: task %+v, want the intent %+v", got, b)
		}
	}
	// The next command, even one that changes nothing, records it.
	if err := s.UpdateIf(func(*State) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if got := onDisk().Processes[b.Hash]; got == nil || got.Token != b.Token {
		t.Fatalf("state.json after the next update: %+v, want the intent's task", got)
	}
	if _, err := os.Stat(s.intentPath()); !os.IsNotExist(err) {
		t.Fatalf("intent file after the next update: %v, want it removed", err)
	}
	// An intent of the instance state.json holds (btl ended between the
	// save and the removal) changes nothing and goes at the next update.
	stale := *b
	stale.Status = &Status{State: Starting}
	if err := s.checkpoint(&State{Processes: map[string]*Task{}}, &stale); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(st *State) error { st.Processes[b.Hash].PID = 77; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := onDisk().Processes[b.Hash]; got == nil || got.PID != 77 {
		t.Fatalf("state.json after an update with a stale intent: %+v, want PID 77 kept", got)
	}
	if _, err := os.Stat(s.intentPath()); !os.IsNotExist(err) {
		t.Fatalf("stale intent file: %v, want it removed", err)
	}
}

// TestStoreIntentOfAnIntent: a start that ends after its intent, then a
// second start of another task that ends likewise: neither task is lost.
func TestStoreIntentOfAnIntent(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	unsaved := func(h string) {
		t.Helper()
		// An Update whose fn records the intent and then "dies": the
		// intent is recorded, nothing else is saved.
		errDied := errors.New("died")
		err := s.Update(func(st *State) error {
			task := &Task{Hash: h, Command: h[:1], Token: h + "-1", Status: &Status{State: Starting}}
			st.Processes[h] = task
			if err := s.checkpoint(st, task); err != nil {
				return err
			}
			st.checkpointed = false // died: no undo
			return errDied
		})
		if !errors.Is(err, errDied) {
			t.Fatal(err)
		}
	}
	unsaved("aaaaaaaaaaaaaaaa")
	unsaved("bbbbbbbbbbbbbbbb")
	st, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} {
		if st.Processes[h] == nil {
			t.Errorf("task %s of an interrupted start is lost", h)
		}
	}
}
