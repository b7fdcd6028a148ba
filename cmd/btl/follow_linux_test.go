package main

import (
	"strings"
	"testing"
	"time"

	"btl/core/coretest"
)

// TestLogsFollowSeveralOnATerminal: -f with several tasks colours each
// label on a terminal (not with NO_COLOR), and returns once all ended.
func TestLogsFollowSeveralOnATerminal(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	u.start(dir, "--name", "one", "sh", "-c", "echo first; exit 1")
	b := u.start(dir, "sh", "-c", "echo second; exit 2")
	coretest.Eventually(t, 10*time.Second, "both to end", func() bool {
		out := u.ok(dir, "list")
		return strings.Contains(out, "exited 1") && strings.Contains(out, "exited 2")
	})
	for _, c := range []struct {
		env   []string
		color bool
	}{{nil, true}, {[]string{"NO_COLOR=1"}, false}} {
		out := u.btlOnTerminal(dir, c.env, "logs", "-f", "one", b.hash[:6])
		if ansi.MatchString(out) != c.color {
			t.Errorf("colours %v with %v:\n%q", !c.color, c.env, out)
		}
		plain := ansi.ReplaceAllString(out, "")
		for _, want := range []string{"one      | first\n", "one      | [btl] exited 1\n", b.hash[:8] + " | second\n", b.hash[:8] + " | [btl] exited 2\n"} {
			if !strings.Contains(plain, want) {
				t.Errorf("logs -f one %s lacks %q:\n%s", b.hash[:6], want, plain)
			}
		}
	}
}
