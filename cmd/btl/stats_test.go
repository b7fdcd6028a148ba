package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

// TestListShowsWhatRuns: list, list -o json and show give each running
// task's listening ports (of the whole tree), CPU, memory and uptime; a
// start whose port another btl task holds says which task.
func TestListShowsWhatRuns(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	port := freePort(t)
	p := strconv.Itoa(port)
	// The listener is a child of the task's main process: sh, sleep and
	// it (and, with launchd, btl's launcher) make the tree.
	srv := []string{"sh", "-c", `env BTL_TEST_LISTEN=127.0.0.1:` + p + ` "$0" & sleep 100`, testBinary()}
	r := u.btl(dir, append([]string{"--name", "srv", "--wait-port", p}, srv...)...)
	s, ok := parseStart(strings.Split(r.stdout, "[btl] Ready")[0])
	if r.code != 0 || !ok {
		t.Fatalf("start of the server: %+v", r)
	}
	burn := u.start(dir, "sh", "-c", "while :; do :; done")
	ended := u.start(dir, "sh", "-c", "exit 4")

	type entry struct {
		Hash          string   `json:"hash"`
		Status        string   `json:"status"`
		Ports         []int    `json:"ports"`
		Processes     int      `json:"processes"`
		CPUSeconds    *float64 `json:"cpu_seconds"`
		CPUPercent    *float64 `json:"cpu_percent"`
		MemoryBytes   *uint64  `json:"memory_bytes"`
		UptimeSeconds *float64 `json:"uptime_seconds"`
	}
	var byHash map[string]entry
	coretest.Eventually(t, 10*time.Second, "the burner to use CPU and the short task to end", func() bool {
		var es []entry
		if err := json.Unmarshal([]byte(u.ok(dir, "list", "--json")), &es); err != nil {
			t.Fatal(err)
		}
		byHash = map[string]entry{}
		for _, e := range es {
			byHash[e.Hash] = e
		}
		b := byHash[burn.hash]
		return b.CPUSeconds != nil && *b.CPUSeconds >= 0.1 && byHash[ended.hash].Status == "exited"
	})
	e := byHash[s.hash]
	if len(e.Ports) != 1 || e.Ports[0] != port || e.Processes < 3 || e.MemoryBytes == nil || *e.MemoryBytes < 1<<20 ||
		e.UptimeSeconds == nil || *e.UptimeSeconds <= 0 || e.CPUSeconds == nil || e.CPUPercent == nil {
		t.Errorf("the server in JSON: %+v", e)
	}
	if b := byHash[burn.hash]; b.CPUPercent == nil || *b.CPUPercent <= 0 || len(b.Ports) != 0 || b.Ports == nil {
		t.Errorf("the burner in JSON: %+v", b)
	}
	if x := byHash[ended.hash]; x.Ports == nil || len(x.Ports) != 0 || x.CPUSeconds != nil || x.MemoryBytes != nil || x.UptimeSeconds != nil {
		t.Errorf("the ended task in JSON: %+v", x)
	}

	out := u.ok(dir, "list")
	for _, re := range []string{
		`(?m)^HASH +NAME +STATUS +PORTS +CPU +MEM +UPTIME +COMMAND$`,
		`(?m)^` + s.hash + ` +srv +running +` + p + ` +\d+\.\d+s/\d+% +\d+(\.\d)?[KM] +\d+s +` + regexp.QuoteMeta(s.command) + `$`,
		`(?m)^` + burn.hash + ` +- +running +- +\d+\.\d+s/\d+% +\S+ +\d+s +`,
		`(?m)^` + ended.hash + ` +- +exited 4 +- +- +- +- +sh -c 'exit 4'$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("list does not match %s:\n%s", re, out)
		}
	}
	show := u.ok(dir, "show", "srv")
	for _, want := range []string{"Ports:     " + p + "\n", "CPU:       ", "Memory:    ", "Uptime:    ", "Processes: "} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	// Another task that wants the port is told which task holds it.
	other := t.TempDir()
	r = u.btl(other, "--wait-port", p, "env", "BTL_TEST_LISTEN=127.0.0.1:"+p, testBinary())
	want := "[btl] port " + p + " is held by task " + s.hash[:8] + ` "srv" (` + s.command + " in " + mustReal(t, dir) + ")\n"
	if r.code != 3 || !strings.Contains(r.stderr, "address already in use") || !strings.Contains(r.stderr, want) {
		t.Errorf("a start whose port another task holds: %+v\nwant %q", r, want)
	}
}
