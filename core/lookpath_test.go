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
	// A directory on PATH that cannot be searched: skipped, as sh does.
	closed := filepath.Join(dir, "closed")
	os.Mkdir(closed, 0o755)
	os.WriteFile(filepath.Join(closed, "hidden"), []byte("#!/bin/sh\n"), 0o755)
	os.Chmod(closed, 0)
	t.Cleanup(func() { os.Chmod(closed, 0o755) })
	env := []string{"PATH=/nonexistent:" + closed + ":" + bin}
	for _, c := range []struct {
		name string
		want string
		err  error
	}{
		{"tool", filepath.Join(bin, "tool"), nil},
		{"./bin/tool", filepath.Join(bin, "tool"), nil},
		{filepath.Join(bin, "tool"), filepath.Join(bin, "tool"), nil},
		{"missing", "", ErrNotFound},
		{"hidden", "", ErrNotFound},
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

func TestLookPathInterpreter(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("inner", "#!/bin/sh\n")
	os.WriteFile(filepath.Join(dir, "noexec"), []byte("x"), 0o644)
	for _, c := range []struct {
		name, script string
		err          error
	}{
		{"ok", "#!/bin/sh\necho\n", nil},
		{"args", "#! /bin/sh -e\n", nil},
		{"binary", "\x7fELF", nil},
		{"empty", "#!\n", nil},
		{"nested", "#!" + filepath.Join(dir, "inner") + "\n", nil},
		{"relative", "#!inner\n", nil},
		{"missing", "#!/nonexistent/sh\n", ErrNotFound},
		{"crlf", "#!/bin/sh\r\n", ErrNotFound},
		{"directory", "#!/tmp\n", ErrIsDir},
		{"not executable", "#!" + filepath.Join(dir, "noexec") + "\n", ErrNotExecutable},
	} {
		write("script", c.script)
		_, err := LookPath("./script", dir, nil)
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: LookPath = %v, want %v", c.name, err, c.err)
		}
	}
}
