package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
)

// TestNames gives tasks names and uses them wherever a hash goes: list,
// show, logs, restart, kill, clean and completion. A name stays with its
// task across replaces, moves on from a task that ended, and is refused
// while another task runs with it.
func TestNames(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	out := u.ok(dir, "--name", "api", "sh", "-c", "echo api up; exec sleep 100")
	api, ok := parseStart(out)
	if !ok || !strings.Contains(out, "[btl] Name: api\n") {
		t.Fatalf("named start printed:\n%s", out)
	}
	if got := u.state().Processes[api.hash].Name; got != "api" {
		t.Fatalf("state.json name %q", got)
	}
	if list := u.ok(dir, "list"); !strings.Contains(list, api.hash+"  api ") {
		t.Errorf("list lacks the name:\n%s", list)
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(u.ok(dir, "list", "--json")), &js); err != nil || len(js) != 1 || js[0]["name"] != "api" {
		t.Errorf("list --json: %v %v", js, err)
	}
	if show := u.ok(dir, "show", "api"); !strings.Contains(show, "Hash:      "+api.hash) || !strings.Contains(show, "Name:      api\n") {
		t.Errorf("show api:\n%s", show)
	}
	waitLog(t, api.log, "api up")
	if logs := u.ok(dir, "logs", "api"); !strings.Contains(logs, "api up\n") {
		t.Errorf("logs api:\n%s", logs)
	}
	if c := u.btl(dir, "__complete", "kill", "a").stdout; !strings.HasPrefix(c, "api\tsh -c") {
		t.Errorf("completion of a name:\n%s", c)
	}

	// Another command cannot take a name a running task has.
	other := []string{"sh", "-c", "touch other-ran; exec sleep 100"}
	otherHash := core.Hash(mustReal(t, dir), core.CommandLine(other))
	r := u.btl(dir, append([]string{"--name", "api"}, other...)...)
	if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "name in use: task "+api.hash) {
		t.Errorf("a second task named api: %+v", r)
	}
	if st := u.state(); st.Processes[otherHash] != nil || len(st.Processes) != 1 {
		t.Errorf("the refused start was recorded: %v", st.Processes)
	}
	if _, err := os.Stat(filepath.Join(dir, "other-ran")); err == nil {
		t.Error("the refused start ran its command")
	}

	// The name is a label: the hash decides replacement, and a replace
	// keeps the name unless given another.
	again := u.start(dir, "sh", "-c", "echo api up; exec sleep 100")
	if again.hash != api.hash || again.killed != api.pid {
		t.Errorf("replace of a named task: %+v", again)
	}
	if got := u.state().Processes[api.hash].Name; got != "api" {
		t.Errorf("name after a replace without --name: %q", got)
	}
	restarted := u.start(dir, "restart", "api")
	if restarted.killed != again.pid || u.state().Processes[api.hash].Name != "api" {
		t.Errorf("restart api: %+v, state %+v", restarted, u.state().Processes[api.hash])
	}

	// A name that reads as a hash prefix is refused, whether or not a
	// task's hash starts with it yet.
	plain := u.start(dir, "sleep", "101")
	for _, name := range []string{plain.hash[:6], "a5a21823"} {
		r = u.btl(dir, "--name", name, "sleep", "102")
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "reads as a hash prefix") {
			t.Errorf("a name that reads as a hash prefix: %+v", r)
		}
	}
	for _, bad := range []string{"--name=", "--name=-x", "--name=a b", "--name=a/b", "--name=" + strings.Repeat("n", 65)} {
		r := u.btl(dir, bad, "sleep", "103")
		if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "invalid name") {
			t.Errorf("btl %s: %+v", bad, r)
		}
	}
	if n := len(u.state().Processes); n != 2 {
		t.Errorf("refused starts left %d tasks, want 2", n)
	}

	// A task that ended gives its name up; clean and kill take names.
	job := u.start(dir, "--name", "job", "sh", "-c", "exit 3")
	coretest.Eventually(t, 10*time.Second, "job to end", func() bool {
		return strings.Contains(u.ok(dir, "show", "job"), "exited 3")
	})
	job2 := u.start(dir, "--name", "job", "sleep", "104")
	if show := u.ok(dir, "show", "job"); !strings.Contains(show, job2.hash) {
		t.Errorf("show job after the name moved on:\n%s", show)
	}
	if got := u.state().Processes[job.hash].Name; got != "" {
		t.Errorf("the ended task kept the name: %q", got)
	}
	if out := u.ok(dir, "kill", "api", "job"); strings.Count(out, "Process killed") != 2 {
		t.Errorf("kill api job: %q", out)
	}
	if coretest.Alive(restarted.pid) || coretest.Alive(job2.pid) {
		t.Error("kill by name left a process running")
	}
	u.ok(dir, "--name", "done", "true")
	coretest.Eventually(t, 10*time.Second, "done to end", func() bool {
		return strings.Contains(u.ok(dir, "show", "done"), "exited 0")
	})
	if out := u.ok(dir, "clean", "done"); !strings.Contains(out, "Removed 1") {
		t.Errorf("clean done: %q", out)
	}
}
