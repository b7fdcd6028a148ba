package core

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"api", true}, {"web-1.dev_x", true}, {"9f1", true}, {"9f1c-api", true}, {"0123456789abcdef0", true},
		{"9f1c", false}, {"a5a21823", false}, {"A5A21823", false}, {"0123456789abcdef", false}, {strings.Repeat("n", MaxNameLen), true},
		{"", false}, {"-x", false}, {".x", false}, {"a b", false}, {"a/b", false}, {"é", false},
		{strings.Repeat("n", MaxNameLen+1), false},
	} {
		err := CheckName(c.name)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestFindPrefersNames(t *testing.T) {
	st := &State{Processes: map[string]*Task{
		"abcd000000000000": {Hash: "abcd000000000000"},
		"1111000000000000": {Hash: "1111000000000000", Name: "abcd"},
	}}
	for _, c := range []struct{ arg, want string }{{"abcd", "1111000000000000"}, {"abcd0", "abcd000000000000"}, {"1111", "1111000000000000"}} {
		if got, err := Find(st, c.arg); err != nil || got.Hash != c.want {
			t.Errorf("Find(%q) = %v, %v; want %s", c.arg, got, err, c.want)
		}
	}
	if _, err := Find(st, "nope"); !errors.Is(err, ErrBadHash) {
		t.Errorf("Find of an unknown name: %v", err)
	}
}
