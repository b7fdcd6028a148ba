package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"btl/core"
)

// tableViews are tasks in every state a list row shows, with what the
// running ones use.
func tableViews() ([]core.View, []taskStats) {
	started := time.Now().Add(-50 * time.Hour)
	views := []core.View{
		{Task: &core.Task{Hash: "3475f7d0da0c5d6d", PID: 13998, Command: "python3 -m http.server 8080", Cwd: "/tmp/demo/myapp",
			StartedAt: started, Backend: "systemd", Unit: "btl-3475f7d0da0c5d6d-5e0a1c27.service", Name: "web"},
			Status: core.Status{State: core.Running}},
		{Task: &core.Task{Hash: "97522b3db4ad820f", PID: 14022, Command: "sh -c 'exit 3'\n", Cwd: "/tmp/demo/myapp",
			StartedAt: started, Backend: "fork", Project: "/tmp/demo"},
			Status: core.Status{State: core.Exited, Code: 3}},
		{Task: &core.Task{Hash: "45713cae998226f9", PID: 5383, Command: "sh -c 'sleep 0.5; exit 1'", Cwd: "/tmp/demo/myapp",
			StartedAt: started, Backend: "fork", Restart: "on-failure:3"},
			Status: core.Status{State: core.Running, PID: 5728, Restarts: 2, LastExit: "exited 1"}},
		{Task: &core.Task{Hash: "0123456789abcdef", PID: 77, Command: "sleep 9", Cwd: "/tmp/x", Backend: "launchd"},
			Status: core.Status{State: core.Signaled, Signal: 9}},
	}
	stats := []taskStats{
		{Usage: core.Usage{PIDs: []int{13998, 14000}, CPU: 1200 * time.Millisecond, Memory: 18874368, Ports: []int{8080, 24678}}, running: true, uptime: 50 * time.Hour},
		{},
		{Usage: core.Usage{PIDs: []int{5728}}, running: true, uptime: 3 * time.Second},
		{},
	}
	for _, v := range views {
		v.LogFile = "/nonexistent/" + v.Hash + ".log"
	}
	return views, stats
}

// The list table, plain and wide, with and without colour: its columns,
// their order and padding, byte for byte.
func TestListTableColumns(t *testing.T) {
	views, stats := tableViews()
	for _, c := range []struct {
		name        string
		views       int // the first views listed
		wide, color bool
		want        string
	}{
		{"plain", 4, false, false, "" +
			"HASH              NAME  STATUS                PORTS       CPU       MEM    UPTIME  COMMAND\n" +
			"3475f7d0da0c5d6d  web   running               8080,24678  1.20s/0%  18.0M  2d2h    python3 -m http.server 8080\n" +
			"97522b3db4ad820f  -     exited 3              -           -         -      -       sh -c 'exit 3'\\n\n" +
			"45713cae998226f9  -     running (2 restarts)  -           0.00s/0%  0B     3s      sh -c 'sleep 0.5; exit 1'\n" +
			"0123456789abcdef  -     killed (SIGKILL)      -           -         -      -       sleep 9\n"},
		{"wide", 4, true, false, "" +
			"HASH              NAME  PID    STATUS                PORTS       CPU       MEM    UPTIME  PROCS  STARTED  COMMAND                      CWD              BACKEND  UNIT                                   LOG  PROJECT\n" +
			"3475f7d0da0c5d6d  web   13998  running               8080,24678  1.20s/0%  18.0M  2d2h    2      2d ago   python3 -m http.server 8080  /tmp/demo/myapp  systemd  btl-3475f7d0da0c5d6d-5e0a1c27.service  0B   -\n" +
			"97522b3db4ad820f  -     14022  exited 3              -           -         -      -       -      2d ago   sh -c 'exit 3'\\n             /tmp/demo/myapp  fork     -                                      0B   /tmp/demo\n" +
			"45713cae998226f9  -     5728   running (2 restarts)  -           0.00s/0%  0B     3s      1      2d ago   sh -c 'sleep 0.5; exit 1'    /tmp/demo/myapp  fork     -                                      0B   -\n" +
			"0123456789abcdef  -     77     killed (SIGKILL)      -           -         -      -       -      -        sleep 9                      /tmp/x           launchd  -                                      0B   -\n"},
		{"wide without a project", 1, true, false, "" +
			"HASH              NAME  PID    STATUS   PORTS       CPU       MEM    UPTIME  PROCS  STARTED  COMMAND                      CWD              BACKEND  UNIT                                   LOG\n" +
			"3475f7d0da0c5d6d  web   13998  running  8080,24678  1.20s/0%  18.0M  2d2h    2      2d ago   python3 -m http.server 8080  /tmp/demo/myapp  systemd  btl-3475f7d0da0c5d6d-5e0a1c27.service  0B\n"},
		{"colour", 2, false, true, "" +
			"HASH              NAME  STATUS    PORTS       CPU       MEM    UPTIME  COMMAND\n" +
			"3475f7d0da0c5d6d  web   \x1b[32mrunning\x1b[0m   8080,24678  1.20s/0%  18.0M  2d2h    python3 -m http.server 8080\n" +
			"97522b3db4ad820f  -     \x1b[31mexited 3\x1b[0m  -           -         -      -       sh -c 'exit 3'\\n\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeTable(&b, rowsOf(views[:c.views], stats[:c.views], nil), c.wide, c.color); err != nil {
				t.Fatal(err)
			}
			if b.String() != c.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), c.want)
			}
		})
	}
}

// list -o json's fields keep their types: numbers stay numbers, what a
// task that does not run lacks is absent, an exit code it does not have
// is null.
func TestListJSONFields(t *testing.T) {
	views, stats := tableViews()
	var b bytes.Buffer
	if err := writeRowsJSON(&b, rowsOf(views, stats, func(*core.Task) string { return "ps" })); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v in\n%s", err, b.String())
	}
	absent := struct{}{}
	for _, c := range []struct {
		task  int
		key   string
		value any
	}{
		{0, "name", "web"}, {0, "pid", 13998.0}, {0, "status", "running"}, {0, "exit_code", nil},
		{0, "ports", []any{8080.0, 24678.0}}, {0, "processes", 2.0}, {0, "cpu_seconds", 1.2},
		{0, "memory_bytes", 18874368.0}, {0, "restarts", 0.0}, {0, "stop_signal", "SIGTERM"},
		{0, "stop_timeout", "2s"}, {0, "inspect", "ps"}, {0, "unit", "btl-3475f7d0da0c5d6d-5e0a1c27.service"},
		{0, "signal", absent}, {0, "project", absent}, {0, "restart", absent}, {0, "watch", absent},
		{1, "status", "exited"}, {1, "exit_code", 3.0}, {1, "ports", []any{}}, {1, "processes", 0.0},
		{1, "cpu_seconds", absent}, {1, "uptime_seconds", absent}, {1, "memory_bytes", absent},
		{1, "project", "/tmp/demo"}, {1, "unit", absent}, {1, "command", "sh -c 'exit 3'\n"}, {1, "argv", nil},
		{2, "pid", 5728.0}, {2, "restarts", 2.0}, {2, "restart", "on-failure:3"}, {2, "last_exit", "exited 1"},
		{2, "crash_loop", absent}, {2, "memory_bytes", 0.0},
		{3, "status", "killed"}, {3, "signal", "SIGKILL"}, {3, "exit_code", nil}, {3, "backend", "launchd"},
	} {
		v, ok := got[c.task][c.key]
		if c.value == absent {
			if ok {
				t.Errorf("task %d: %s = %v, want it absent", c.task, c.key, v)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(v, c.value) {
			t.Errorf("task %d: %s = %#v (there: %v), want %#v", c.task, c.key, v, ok, c.value)
		}
	}
}

// btl show's lines: which a task has, in their order.
func TestShowLines(t *testing.T) {
	views, stats := tableViews()
	rows := rowsOf(views, stats, func(*core.Task) string { return "ps" })
	for _, c := range []struct {
		task int
		want string
	}{
		{0, "Hash Name Command Directory Status PID Uptime Started Ports CPU Memory Processes Backend Unit Log Inspect"},
		{1, "Hash Command Directory Project Status PID Started Backend Log Inspect"},
		{2, "Hash Command Directory Status Restart Restarts Last exit PID Uptime Started Ports CPU Memory Processes Backend Log Inspect"},
	} {
		var labels, texts []string
		for _, l := range showLines(rows[c.task]) {
			labels, texts = append(labels, l[0]), append(texts, l[0]+": "+l[1])
		}
		if got := strings.Join(labels, " "); got != c.want {
			t.Errorf("task %d: lines %s, want %s", c.task, got, c.want)
		}
		t.Logf("%s", strings.Join(texts, "\n"))
	}
	if got := showLines(rows[2]); !slices.Contains(got, [2]string{"Processes", "1 (5728)"}) || !slices.Contains(got, [2]string{"Status", "running"}) {
		t.Errorf("task 2: %q", got)
	}
}
