package core

import (
	"errors"
	"testing"
	"time"
)

func TestParseRestart(t *testing.T) {
	cases := []struct {
		in   string
		want RestartPolicy
		bad  bool
	}{
		{"no", RestartPolicy{}, false},
		{"on-failure", RestartPolicy{RestartOnFailure, DefaultMaxRestarts}, false},
		{"on-failure:3", RestartPolicy{RestartOnFailure, 3}, false},
		{"always", RestartPolicy{RestartAlways, DefaultMaxRestarts}, false},
		{"always:1", RestartPolicy{RestartAlways, 1}, false},
		{"", RestartPolicy{}, true},
		{"sometimes", RestartPolicy{}, true},
		{"on-failure:0", RestartPolicy{}, true},
		{"on-failure:-2", RestartPolicy{}, true},
		{"on-failure:x", RestartPolicy{}, true},
		{"on-failure:", RestartPolicy{}, true},
		{"no:1", RestartPolicy{}, true},
		{"always:10000", RestartPolicy{RestartAlways, MaxRestarts}, false},
		{"always:10001", RestartPolicy{}, true},
		{"always:4294967295", RestartPolicy{}, true},
		{"on-failure:99999999999999999999", RestartPolicy{}, true},
	}
	for _, c := range cases {
		got, err := ParseRestart(c.in)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("ParseRestart(%q) = %+v, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadRestart) {
			t.Errorf("ParseRestart(%q): %v does not wrap ErrBadRestart", c.in, err)
		}
		if err == nil {
			if back, _ := ParseRestart(got.String()); got.Enabled() && back != got {
				t.Errorf("%q: String %q parses as %+v", c.in, got.String(), back)
			}
		}
	}
}

func TestRestartDecisions(t *testing.T) {
	exit0, exit1, killed := Status{State: Exited}, Status{State: Exited, Code: 1}, Status{State: Signaled, Signal: 9}
	cases := []struct {
		mode RestartMode
		st   Status
		want bool
	}{
		{RestartNo, exit1, false},
		{RestartOnFailure, exit0, false},
		{RestartOnFailure, exit1, true},
		{RestartOnFailure, killed, true},
		{RestartAlways, exit0, true},
	}
	for _, c := range cases {
		if got := (RestartPolicy{Mode: c.mode, Max: 1}).Restarts(c.st); got != c.want {
			t.Errorf("%q after %v: %v", c.mode, c.st, got)
		}
	}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 8: 10 * time.Second, 50: 10 * time.Second} {
		if got := Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
	if got := (Status{State: Exited, Code: 1, Restarts: 10, CrashLoop: true}).String(); got != "crash loop (exited 1, 10 restarts)" {
		t.Errorf("crash loop renders as %q", got)
	}
}
