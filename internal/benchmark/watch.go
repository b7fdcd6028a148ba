//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serveEnv makes this program a tiny HTTP server on the port it names,
// answering every request with its own PID: the task of the watch rows.
const serveEnv = "_BTLBENCH_SERVE"

// serve is this program run as that server.
func serve() {
	port := os.Getenv(serveEnv)
	pid := strconv.Itoa(os.Getpid())
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, pid) }))
	os.Exit(1)
}

// servedPID is the PID the server on port answers with, "" when none
// answers.
func servedPID(c *http.Client, port string) string {
	resp, err := c.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// untilServedBy polls port until a server other than old answers.
func untilServedBy(c *http.Client, port, old string) (string, error) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if p := servedPID(c, port); p != "" && p != old {
			return p, nil
		}
	}
	return "", fmt.Errorf("no new server on port %s within 30s", port)
}

// watchDebounce is the --debounce of the watch rows: short, so that the
// row shows what btl adds to a replace.
const watchDebounce = 50 * time.Millisecond

// watch times, per backend, a file write under a watched directory to the
// new instance of a small HTTP server answering, beside the floor of
// doing the same by hand: SIGTERM the server, wait until it is gone,
// start it again, poll until it answers.
func (b *bench) watch(r *report, backend string) error {
	d := b.dataDir("watch-" + backend)
	dir := filepath.Join(b.tmp, "watched-"+backend)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(dir, "app.txt")
	c := &http.Client{Timeout: time.Second}
	port := strconv.Itoa(freeTCPPort())
	s, err := b.runEnv(d, []string{serveEnv + "=" + port}, b.btl, "--backend", backend, "--watch="+dir,
		"--debounce", watchDebounce.String(), "--wait-port", port, b.self)
	if err != nil {
		return err
	}
	if !strings.Contains(s.out, "[btl] Watching:") {
		return fmt.Errorf("btl --watch does not watch: %q", s.out)
	}
	floorPort := strconv.Itoa(freeTCPPort())
	startFloor := func() (*exec.Cmd, error) {
		cmd := exec.Command(b.self)
		cmd.Env = append(os.Environ(), serveEnv+"="+floorPort)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return cmd, cmd.Start()
	}
	floor, err := startFloor()
	if err != nil {
		return err
	}
	defer func() { _ = floor.Process.Kill(); _ = floor.Wait() }()
	old, err := untilServedBy(c, floorPort, "")
	if err != nil {
		return err
	}
	cur, err := untilServedBy(c, port, "")
	if err != nil {
		return err
	}
	// The target: the debounce, and a replace as btl restart does it
	// (state lock, the old tree stopped and seen gone, the record saved,
	// the supervisor started), well under 150 ms; the watcher itself
	// should add nothing to see.
	w := &row{name: "watch: a file write to the new instance answering, " + backend + " (--debounce 50ms)",
		floor: "by hand: SIGTERM, wait, start, poll", diff: true, limit: watchDebounce.Seconds()*1000 + 150}
	for i := range *flagN {
		err := inOrder(i, func() error {
			t0 := time.Now()
			if err := os.WriteFile(src, []byte(strconv.Itoa(i)), 0o644); err != nil {
				return err
			}
			p, err := untilServedBy(c, port, cur)
			w.btl, cur = append(w.btl, sample{ms: float64(time.Since(t0).Microseconds()) / 1000}), p
			return err
		}, func() error {
			t0 := time.Now()
			_ = floor.Process.Signal(syscall.SIGTERM)
			_ = floor.Wait()
			var err error
			if floor, err = startFloor(); err != nil {
				return err
			}
			p, err := untilServedBy(c, floorPort, old)
			w.base, old = append(w.base, sample{ms: float64(time.Since(t0).Microseconds()) / 1000}), p
			return err
		})
		if err != nil {
			return err
		}
		// The watcher's files settle before the next write.
		time.Sleep(2 * watchDebounce)
	}
	r.rows = append(r.rows, w)
	if _, err := exec.LookPath("nodemon"); err != nil {
		r.notes = append(r.notes, "nodemon is not installed (no `nodemon` on PATH): the watch rows have no nodemon beside them.")
	}
	_, err = b.run(d, b.btl, "--backend", backend, "kill", "--all")
	return err
}

// freeTCPPort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freeTCPPort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
