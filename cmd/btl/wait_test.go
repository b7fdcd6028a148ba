package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

// TestWaitPort starts a server that listens only after a delay: btl
// returns once it listens, so a connection made right after succeeds.
func TestWaitPort(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	port := freePort(t)
	argv := append([]string{"--wait-port", strconv.Itoa(port)}, listenArgv("127.0.0.1:"+strconv.Itoa(port), 300*time.Millisecond)...)
	r := u.btl(dir, argv...)
	if r.code != 0 || !regexp.MustCompile(`\[btl\] Ready after \d+\.\d\ds: listening on port `+strconv.Itoa(port)+`\n$`).MatchString(r.stdout) {
		t.Fatalf("btl --wait-port: %+v", r)
	}
	if !dials(port) {
		t.Errorf("port %d does not accept connections once btl returned", port)
	}
	// A replace waits for the new instance, not the old one's port.
	r = u.btl(dir, argv...)
	if r.code != 0 || !strings.Contains(r.stdout, "[btl] Killing previous process") || !dials(port) {
		t.Errorf("replace with --wait-port: %+v", r)
	}
}

// TestWaitAnyPort waits for whatever port the task listens on first and
// says which.
func TestWaitAnyPort(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	r := u.btl(dir, append([]string{"--wait", "--wait-timeout", "20s"}, listenArgv("127.0.0.1:0", 200*time.Millisecond)...)...)
	m := regexp.MustCompile(`\[btl\] Ready after \d+\.\d\ds: listening on port (\d+)\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("btl --wait: %+v", r)
	}
	if port, _ := strconv.Atoi(m[1]); !dials(port) {
		t.Errorf("port %d does not accept connections", port)
	}
}

// TestWaitLog returns once this run's log has a matching line; the
// previous run's lines do not count.
func TestWaitLog(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"--wait-log", `ready in \d+ms`, "sh", "-c", "echo booting; sleep 0.3; echo ready in 300ms >> marks; echo ready in 300ms; exec sleep 100"}
	for i := 1; i <= 2; i++ {
		r := u.btl(dir, argv...)
		if r.code != 0 || !strings.HasSuffix(r.stdout, `: log line "ready in 300ms"`+"\n") {
			t.Fatalf("start %d with --wait-log: %+v", i, r)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "marks"))
		if n := strings.Count(string(b), "ready"); n != i {
			t.Errorf("start %d returned after %d ready lines", i, n)
		}
	}
}

// TestWaitFails: a task that ends before it is ready, or is not ready in
// time, makes btl fail with the last 20 lines of its log.
func TestWaitFails(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	port := strconv.Itoa(freePort(t))
	r := u.btl(dir, "--wait-port", port, "sh", "-c", "for i in $(seq 1 30); do echo line $i; done; exit 3")
	if r.code != 3 || !strings.Contains(r.stderr, "[btl] The process ended (exited 3) before it was ready") ||
		!strings.Contains(r.stderr, "  line 11\n") || !strings.Contains(r.stderr, "  line 30\n") || strings.Contains(r.stderr, "line 10\n") ||
		!strings.HasSuffix(r.stderr, "ended before it was ready (exited 3)\n") {
		t.Errorf("a task that died while waited for: %+v", r)
	}
	r = u.btl(dir, "--wait-port", port, "--wait-timeout", "300ms", "sh", "-c", "echo still booting; exec sleep 100")
	if r.code != 124 || !strings.Contains(r.stderr, "[btl] Not ready after 300ms; the end of its log:\n  still booting\n") {
		t.Errorf("a task not ready in time: %+v", r)
	}
	s, ok := parseStart(r.stdout)
	if !ok || !coretest.Alive(s.pid) {
		t.Errorf("the task not ready in time was not left running: %+v", r)
	}
}

// TestWaitBadInput: each bad readiness flag is one line, exit 2, and
// nothing starts.
func TestWaitBadInput(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--wait-port", "0"}, {"--wait-port", "65536"}, {"--wait-port", "-1"}, {"--wait-port", "http"},
		{"--wait-log", "ready ("}, {"--wait", "--wait-timeout", "0s"}, {"--wait-timeout", "5s"},
	} {
		r := u.btl(dir, append(args, "sh", "-c", "touch ran; exec sleep 100")...)
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "Error: ") {
			t.Errorf("btl %q: %+v", args, r)
		}
	}
	if n := len(u.state().Processes); n != 0 {
		t.Errorf("bad readiness flags left %d tasks", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a start with a bad readiness flag ran its command")
	}
}
