package core

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestParseStop(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"TERM", syscall.SIGTERM}, {"SIGINT", syscall.SIGINT}, {"hup", syscall.SIGHUP}, {"sigquit", syscall.SIGQUIT},
		{"2", syscall.SIGINT}, {"KILL", syscall.SIGKILL},
		{"", 0}, {"NOPE", 0}, {"0", 0}, {"65", 0}, {"-2", 0}, {"SIG", 0},
	} {
		got, err := ParseStopSignal(tc.in)
		if got != tc.want || (err != nil) != (tc.want == 0) || err != nil && !errors.Is(err, ErrBadStop) {
			t.Errorf("ParseStopSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"500ms", 500 * time.Millisecond, true}, {"10s", 10 * time.Second, true}, {"1m", time.Minute, true},
		{"5", 5 * time.Second, true}, {"0.5", 500 * time.Millisecond, true}, {"0", 0, true}, {"1h", time.Hour, true},
		{"-1s", 0, false}, {"2h", 0, false}, {"soon", 0, false}, {"", 0, false},
	} {
		got, err := ParseStopTimeout(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseStopTimeout(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// A task records only a policy that is not the default, and reads back
// what it recorded; a state without the fields, or with fields btl
// cannot read, is the default.
func TestTaskStopPolicy(t *testing.T) {
	for _, p := range []StopPolicy{DefaultStop, {syscall.SIGINT, Grace}, {syscall.SIGTERM, 300 * time.Millisecond}, {syscall.SIGHUP, 0}} {
		var task Task
		p.record(&task)
		if got := task.StopPolicy(); got != p {
			t.Errorf("%+v recorded as %q %q, read back as %+v", p, task.StopSignal, task.StopTimeout, got)
		}
		if p == DefaultStop && (task.StopSignal != "" || task.StopTimeout != "") {
			t.Errorf("the default policy is recorded as %q %q", task.StopSignal, task.StopTimeout)
		}
	}
	if got := (&Task{StopSignal: "bogus", StopTimeout: "forever"}).StopPolicy(); got != DefaultStop {
		t.Errorf("an unreadable policy reads as %+v, want the default", got)
	}
	if got := (Spec{}).StopPolicy(); got != DefaultStop {
		t.Errorf("a Spec without a policy: %+v", got)
	}
	if got := (Spec{Stop: StopPolicy{Timeout: time.Second}}).StopPolicy(); got != (StopPolicy{syscall.SIGTERM, time.Second}) {
		t.Errorf("a Spec with only a timeout: %+v", got)
	}
}
