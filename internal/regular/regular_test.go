package regular

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// odd puts something other than a regular file at path and returns what
// it holds, in words.
var odd = []struct {
	kind string
	make func(t *testing.T, path, target string)
}{
	{"a FIFO", func(t *testing.T, path, _ string) {
		if err := unix.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"a symbolic link", func(t *testing.T, path, target string) {
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}},
	{"a directory", func(t *testing.T, path, _ string) {
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
	}},
	{"a socket", func(t *testing.T, path, _ string) {
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
	}},
}

// within fails the test unless fn returns within a bound: nothing here may
// wait on a FIFO.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5s", what)
	}
}

func TestOddFiles(t *testing.T) {
	ops := []struct {
		name string
		do   func(path string) error
		// replaces: the operation puts a regular file in the odd thing's
		// place (a rename), rather than failing.
		replaces bool
	}{
		{"Open read", func(p string) error {
			f, err := Open(p, os.O_RDONLY, 0)
			if err == nil {
				_ = f.Close()
			}
			return err
		}, false},
		{"Open append", func(p string) error {
			f, err := Open(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err == nil {
				_ = f.Close()
			}
			return err
		}, false},
		{"ReadFile", func(p string) error { _, err := ReadFile(p, 1<<20); return err }, false},
		{"WriteFile", func(p string) error { return WriteFile(p, []byte("new"), 0o600) }, false},
		{"ReplaceFile", func(p string) error { return ReplaceFile(p, []byte("new"), 0o600, false) }, true},
		{"WriteFileAtomic", func(p string) error { return WriteFileAtomic(p, []byte("new"), 0o600) }, true},
	}
	for _, o := range odd {
		for _, op := range ops {
			t.Run(o.kind+"/"+op.name, func(t *testing.T) {
				dir := t.TempDir()
				target := filepath.Join(dir, "target")
				if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "file")
				o.make(t, path, target)
				var err error
				within(t, op.name, func() { err = op.do(path) })
				if b, _ := os.ReadFile(target); string(b) != "precious" {
					t.Errorf("the symbolic link's target was written: %q", b)
				}
				if op.replaces && o.kind != "a directory" {
					if err != nil {
						t.Fatalf("%s over %s: %v", op.name, o.kind, err)
					}
					if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
						t.Errorf("%s left %v at the path", op.name, fi.Mode())
					}
					return
				}
				if !errors.Is(err, ErrNotRegular) {
					t.Fatalf("%s on %s: %v, want ErrNotRegular", op.name, o.kind, err)
				}
				if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "is "+o.kind) {
					t.Errorf("error %q does not say that %s is %s", msg, path, o.kind)
				}
				if o.kind == "a symbolic link" && !errors.Is(err, unix.ELOOP) {
					t.Errorf("a symbolic link: %v does not wrap ELOOP", err)
				}
			})
		}
	}
}

func TestIsFile(t *testing.T) {
	for _, o := range odd {
		dir := t.TempDir()
		target := filepath.Join(dir, "target")
		if err := os.WriteFile(target, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if !IsFile(target) {
			t.Errorf("IsFile of a regular file = false")
		}
		path := filepath.Join(dir, "file")
		o.make(t, path, target)
		if IsFile(path) {
			t.Errorf("IsFile of %s = true", o.kind)
		}
	}
	if IsFile(filepath.Join(t.TempDir(), "missing")) {
		t.Errorf("IsFile of nothing = true")
	}
}

func TestReadFileBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(path, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("ReadFile at the bound = %q, %v", b, err)
	}
	if _, err := ReadFile(path, 9); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile past the bound = %v, want ErrTooLarge", err)
	}
	if _, err := ReadFile(path+"-missing", 9); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v, want ErrNotExist", err)
	}
}

func TestReplaceFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := ReplaceFile(path, []byte("a"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".f.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
