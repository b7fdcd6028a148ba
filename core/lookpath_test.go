package core

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "data"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(bin, "sub"), 0o755)
	env := []string{"PATH=/nonexistent:" + bin}
	for _, c := range []struct {
		name string
		want string
		err  error
	}{
		{"tool", filepath.Join(bin, "tool"), nil},
		{"./bin/tool", filepath.Join(bin, "tool"), nil},
		{filepath.Join(bin, "tool"), filepath.Join(bin, "tool"), nil},
		{"missing", "", ErrNotFound},
		{"data", "", ErrNotExecutable},
		{"sub", "", ErrNotFound},
		{"./bin/data", "", ErrNotExecutable},
		{"./bin", "", ErrIsDir},
		{"./nope", "", ErrNotFound},
		{"", "", ErrNotFound},
	} {
		got, err := LookPath(c.name, dir, env)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("LookPath(%q) = %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
		var ee *ExecError
		if err != nil && !errors.As(err, &ee) {
			t.Errorf("LookPath(%q) error %T is not *ExecError", c.name, err)
		}
	}
}
