package main

import (
	"bytes"
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
			"HASH              NAME  PID    STATUS                PORTS       CPU       MEM    UPTIME  PROCS  STARTED  COMMAND                      CWD              BACKEND  UNIT                                   PROJECT\n" +
			"3475f7d0da0c5d6d  web   13998  running               8080,24678  1.20s/0%  18.0M  2d2h    2      2d ago   python3 -m http.server 8080  /tmp/demo/myapp  systemd  btl-3475f7d0da0c5d6d-5e0a1c27.service  -\n" +
			"97522b3db4ad820f  -     14022  exited 3              -           -         -      -       -      2d ago   sh -c 'exit 3'\\n             /tmp/demo/myapp  fork     -                                      /tmp/demo\n" +
			"45713cae998226f9  -     5728   running (2 restarts)  -           0.00s/0%  0B     3s      1      2d ago   sh -c 'sleep 0.5; exit 1'    /tmp/demo/myapp  fork     -                                      -\n" +
			"0123456789abcdef  -     77     killed (SIGKILL)      -           -         -      -       -      -        sleep 9                      /tmp/x           launchd  -                                      -\n"},
		{"wide without a project", 1, true, false, "" +
			"HASH              NAME  PID    STATUS   PORTS       CPU       MEM    UPTIME  PROCS  STARTED  COMMAND                      CWD              BACKEND  UNIT\n" +
			"3475f7d0da0c5d6d  web   13998  running  8080,24678  1.20s/0%  18.0M  2d2h    2      2d ago   python3 -m http.server 8080  /tmp/demo/myapp  systemd  btl-3475f7d0da0c5d6d-5e0a1c27.service\n"},
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
