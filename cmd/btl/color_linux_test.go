package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"btl/core/coretest"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// btlOnTerminal runs btl with its standard output on a terminal and
// returns what the terminal received.
func (u *user) btlOnTerminal(dir string, env []string, args ...string) string {
	u.t.Helper()
	master, tty := openPTY(u.t)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir, cmd.Env = dir, append(append([]string{}, u.env...), env...)
	cmd.Stdout = tty
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	tty.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, master); close(done) }() // ends with EIO once btl exits
	if err := cmd.Wait(); err != nil {
		u.t.Fatalf("btl %q: %v: %s", args, err, stderr.String())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		u.t.Fatal("the terminal's output did not end")
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func TestListColumnsLineUpOnATerminal(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	u.start(dir, "sleep", "305")
	u.start(dir, "sh", "-c", "exit 0") // dim: a colour code of another length
	u.start(dir, "sh", "-c", "exit 4")
	coretest.Eventually(t, 10*time.Second, "the short tasks to end", func() bool {
		out := u.ok(dir, "list")
		return strings.Contains(out, "exited 0") && strings.Contains(out, "exited 4")
	})
	for _, c := range []struct {
		name  string
		env   []string
		args  []string
		color bool
	}{
		{"list", nil, []string{"list"}, true},
		{"list -o wide", nil, []string{"list", "-o", "wide"}, true},
		{"NO_COLOR list", []string{"NO_COLOR=1"}, []string{"list"}, false},
		{"NO_COLOR list -o wide", []string{"NO_COLOR=1"}, []string{"list", "-o", "wide"}, false},
	} {
		out := u.btlOnTerminal(dir, c.env, c.args...)
		if got := ansi.MatchString(out); got != c.color {
			t.Errorf("%s: colours %v, want %v:\n%q", c.name, got, c.color, out)
		}
		plain := ansi.ReplaceAllString(out, "")
		lines := strings.Split(strings.TrimSuffix(plain, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%s: %d lines:\n%s", c.name, len(lines), plain)
		}
		// Every column starts where its header does.
		starts := regexp.MustCompile(`\S+`).FindAllStringIndex(lines[0], -1)
		for _, l := range lines[1:] {
			for _, s := range starts[1:] {
				if s[0] > len(l) || l[s[0]-1] != ' ' || l[s[0]] == ' ' {
					t.Errorf("%s: a column is out of line with its header at %d:\n%s", c.name, s[0], plain)
					break
				}
			}
		}
	}
}
