package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"npm run dev", "npm run dev"},
		{"sh -c 'a\nb'", `sh -c 'a\nb'`},
		{"tab\there", `tab\there`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"bad \xff byte", `bad \xff byte`},
		{"café ☕", "café ☕"},
	} {
		if got := printable(c.in); got != c.want {
			t.Errorf("printable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s ago"}, {59 * time.Second, "59s ago"}, {2 * time.Minute, "2m ago"},
		{3 * time.Hour, "3h ago"}, {49 * time.Hour, "2d ago"}, {-time.Second, "0s ago"},
	} {
		if got := ago(now, now.Add(-c.d)); got != c.want {
			t.Errorf("ago(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := ago(now, time.Time{}); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
}

// list -o wide's LOG column and list -o json's log_bytes say how big a
// task's log is: the size of the file the user finds, 0 once it is gone.
func TestListLogSize(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", "printf '%0500d\\n' 7")
	coretest.Eventually(t, 10*time.Second, "the task to end", func() bool {
		return strings.Contains(u.ok(dir, "list"), "exited 0")
	})
	// btl logs brings the log file up to date (systemd's log agent copies
	// the journal into it as journald writes it, which may lag behind the
	// task's end); list reports the file as it is.
	if out := u.ok(dir, "logs", s.hash); !strings.Contains(out, strings.Repeat("0", 499)+"7\n") {
		t.Fatalf("btl logs: %q", out)
	}
	for _, c := range []struct {
		name   string
		before func()
		min    int64 // the least the log holds: the output, or nothing
	}{
		{"the log", func() {}, 501},
		{"no log", func() {
			if err := os.Remove(s.log); err != nil {
				t.Fatal(err)
			}
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.before()
			var got string
			// The size the user finds, once the log is complete.
			coretest.Eventually(t, 10*time.Second, "list to say the log's size", func() bool {
				var size int64
				if fi, err := os.Stat(s.log); err == nil {
					size = fi.Size()
				}
				var tasks []struct {
					LogBytes *int64 `json:"log_bytes"`
				}
				js := u.ok(dir, "list", "-o", "json")
				if err := json.Unmarshal([]byte(js), &tasks); err != nil || len(tasks) != 1 || tasks[0].LogBytes == nil {
					t.Fatalf("list -o json: %v\n%s", err, js)
				}
				wide := u.ok(dir, "list", "-o", "wide")
				got = fmt.Sprintf("log_bytes %d, LOG %q, the file %d bytes\n%s", *tasks[0].LogBytes, wideCell(t, wide, s.hash, "LOG"), size, wide)
				return *tasks[0].LogBytes == size && size >= c.min && wideCell(t, wide, s.hash, "LOG") == humanSize(size)
			})
			t.Log(got)
		})
	}
}

// wideCell is the cell of column title in the row of task hash of a
// list table.
func wideCell(t *testing.T, table, hash, title string) string {
	t.Helper()
	lines := strings.Split(table, "\n")
	at := regexp.MustCompile(`(^| )` + title + `( |$)`).FindStringIndex(lines[0])
	if at == nil {
		t.Fatalf("no %s column:\n%s", title, table)
	}
	start := at[0]
	if start > 0 {
		start++
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, hash+" ") && len(l) > start {
			return strings.Fields(l[start:])[0]
		}
	}
	t.Fatalf("no row of %s:\n%s", hash, table)
	return ""
}
