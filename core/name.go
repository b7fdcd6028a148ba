package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MaxNameLen is the longest task name btl accepts.
const MaxNameLen = 64

// Errors about task names: a name that is not well formed, or one that
// another running task already has.
var (
	ErrBadName   = errors.New("invalid name")
	ErrNameInUse = errors.New("name in use")
)

// CheckName reports whether name can be given to a task: 1 to MaxNameLen
// characters, letters, digits, '.', '_' and '-', starting with a letter or
// a digit, and not something that reads as a hash prefix (MinPrefix to
// HashLen hex digits): a task started later could have a hash that starts
// with it, and the name would then shadow that task's hash.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: a name cannot be empty", ErrBadName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrBadName, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("%w: %q (names use letters, digits, '.', '_' and '-', and start with a letter or digit)", ErrBadName, name)
		}
	}
	if looksLikeHash(name) {
		return fmt.Errorf("%w: %q reads as a hash prefix (%d to %d hex digits); choose a name with another character", ErrBadName, name, MinPrefix, HashLen)
	}
	return nil
}

// looksLikeHash reports whether s could be taken for a hash prefix.
func looksLikeHash(s string) bool {
	s = strings.ToLower(s)
	return len(s) >= MinPrefix && len(s) <= HashLen && strings.Trim(s, "0123456789abcdef") == ""
}

// findName returns the task named name, preferring one that may still run.
func findName(st *State, name string) *Task {
	var found *Task
	for _, t := range st.Sorted() {
		if t.Name == name && name != "" {
			if found == nil || t.Status == nil || !t.Status.final() {
				found = t
			}
		}
	}
	return found
}

// settleName decides the name of the task spec starts, under the state
// lock and before anything is stopped or started. Without a name, spec
// keeps the name of the instance it replaces. A name is refused when
// CheckName refuses it, or when another task that may still run has it; a
// task that has ended gives its name up.
func (m *Manager) settleName(ctx context.Context, st *State, spec *Spec) error {
	if spec.Name == "" {
		if old := st.Processes[spec.Hash]; old != nil {
			spec.Name = old.Name
		}
		return nil
	}
	if err := CheckName(spec.Name); err != nil {
		return err
	}
	var ended []*Task
	for _, t := range st.Sorted() {
		if t.Hash == spec.Hash {
			continue
		}
		if t.Name != spec.Name {
			continue
		}
		if t.Status != nil && t.Status.final() || m.Status(ctx, t).Ended() {
			ended = append(ended, t)
			continue
		}
		return fmt.Errorf("%w: task %s (%s in %s) is named %q; btl kill %s stops it, or choose another name",
			ErrNameInUse, t.Hash, OneLine(t.Command), OneLine(t.Cwd), spec.Name, spec.Name)
	}
	for _, t := range ended {
		t.Name = ""
	}
	return nil
}
