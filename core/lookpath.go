package core

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"btl/internal/regular"
)

// LookPath resolves name as a shell would run it from dir with the given
// environment: a name with a slash is taken relative to dir, any other is
// searched in env's PATH. Failures are *ExecError values wrapping
// ErrNotFound, ErrNotExecutable or ErrIsDir.
func LookPath(name, dir string, env []string) (string, error) {
	if name == "" {
		return "", &ExecError{Name: name, Err: ErrNotFound}
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := checkExec(p); err != nil {
			return "", &ExecError{Name: name, Err: err}
		}
		if err := checkInterpreter(p, dir, 0); err != nil {
			return "", &ExecError{Name: name, Err: err}
		}
		return p, nil
	}
	var firstErr error
	for _, d := range filepath.SplitList(Getenv(env, "PATH")) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		err := checkExec(p)
		if errors.Is(err, fs.ErrPermission) {
			// A directory on PATH that cannot be searched holds nothing
			// the shell could run: it looks on, and says 127 in the end.
			continue
		}
		if err == nil {
			if err := checkInterpreter(p, dir, 0); err != nil {
				return "", &ExecError{Name: name, Err: err}
			}
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrIsDir) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = ErrNotFound
	}
	return "", &ExecError{Name: name, Err: firstErr}
}

func checkExec(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return ErrNotFound
	case err != nil:
		return err
	case fi.IsDir():
		return ErrIsDir
	case unix.Access(p, unix.X_OK) != nil:
		return ErrNotExecutable
	}
	return nil
}

// checkInterpreter checks the interpreter named on the "#!" line of the
// script p, as the kernel would run it from dir, and that interpreter's
// own, up to the kernel's nesting limit. A missing interpreter is
// ErrNotFound (127, as sh and bash say), one that is a directory or not
// executable ErrIsDir or ErrNotExecutable (126); the error names it. A
// file btl cannot read or that is no script is left to the exec.
func checkInterpreter(p, dir string, depth int) error {
	if depth >= 4 {
		return nil
	}
	f, err := regular.Open(p, os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	buf := make([]byte, 256)
	n, _ := io.ReadFull(f, buf)
	_ = f.Close()
	line, ok := bytes.CutPrefix(buf[:n], []byte("#!"))
	if !ok {
		return nil
	}
	// As the kernel reads it: after blanks, up to a blank, newline or NUL
	// (a carriage return is part of the name).
	line = bytes.TrimLeft(line, " \t")
	if i := bytes.IndexAny(line, " \t\n\x00"); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 {
		return nil
	}
	interp := string(line)
	if !filepath.IsAbs(interp) {
		interp = filepath.Join(dir, interp)
	}
	if err := checkExec(interp); err != nil {
		return fmt.Errorf("bad interpreter %s: %w", OneLine(string(line)), err)
	}
	return checkInterpreter(interp, dir, depth+1)
}

// Getenv returns the value of name in env, the last one when repeated.
func Getenv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// Setenv returns env with name set to value, replacing any earlier entry.
func Setenv(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return append(out, name+"="+value)
}
