package core

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StopPolicy is how a task is stopped: Signal to its whole tree, then,
// when anything is left after Timeout, SIGKILL (--stop-signal,
// --stop-timeout). Every backend honours it: systemd as the unit's
// KillSignal and TimeoutStopSec, launchd and fork in the tree stop.
type StopPolicy struct {
	Signal  syscall.Signal
	Timeout time.Duration
}

// Grace is the default stop timeout: how long a stopped task gets between
// its stop signal and SIGKILL.
const Grace = 2 * time.Second

// DefaultStop is the stop policy of a task started without --stop-signal
// and --stop-timeout: SIGTERM, then SIGKILL after Grace.
var DefaultStop = StopPolicy{Signal: unix.SIGTERM, Timeout: Grace}

// MaxStopTimeout bounds --stop-timeout.
const MaxStopTimeout = time.Hour

// ErrBadStop reports a --stop-signal or --stop-timeout btl cannot use.
var ErrBadStop = errors.New("bad stop policy")

// ParseStopSignal reads a signal as --stop-signal takes it: a name, with
// or without SIG, in any case (INT, SIGINT, sigint), or a number.
func ParseStopSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n >= 65 || unix.SignalName(syscall.Signal(n)) == "" {
			return 0, fmt.Errorf("%w: --stop-signal %s is no signal", ErrBadStop, s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("%w: --stop-signal %q is no signal (say TERM, INT, HUP, QUIT, USR1 or a number)", ErrBadStop, s)
	}
	return sig, nil
}

// ParseStopTimeout reads a time as --stop-timeout takes it: a duration
// (500ms, 10s, 1m) or a number of seconds, from 0 (SIGKILL right after
// the stop signal) to MaxStopTimeout.
func ParseStopTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseFloat(s, 64)
		if nerr != nil {
			return 0, fmt.Errorf("%w: --stop-timeout %q is no duration (say 500ms, 10s or 1m)", ErrBadStop, s)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < 0 || d > MaxStopTimeout {
		return 0, fmt.Errorf("%w: --stop-timeout %s is out of range (0 to %v)", ErrBadStop, s, MaxStopTimeout)
	}
	return d, nil
}

// SignalName is the policy's signal as btl prints it: SIGTERM.
func (p StopPolicy) SignalName() string { return unix.SignalName(p.Signal) }

// String renders p as the flags that give it ("" for the default).
func (p StopPolicy) String() string {
	var parts []string
	if p.Signal != DefaultStop.Signal {
		parts = append(parts, "--stop-signal "+strings.TrimPrefix(p.SignalName(), "SIG"))
	}
	if p.Timeout != DefaultStop.Timeout {
		parts = append(parts, "--stop-timeout "+p.Timeout.String())
	}
	return strings.Join(parts, " ")
}

// record sets t's stop fields from p: empty for the default, so that a
// state written before tasks had stop policies reads as the default.
func (p StopPolicy) record(t *Task) {
	t.StopSignal, t.StopTimeout = "", ""
	if p.Signal != 0 && p.Signal != DefaultStop.Signal {
		t.StopSignal = p.SignalName()
	}
	if p.Timeout != DefaultStop.Timeout {
		t.StopTimeout = p.Timeout.String()
	}
}

// SetStopPolicy records p as t's stop policy (a backend that reads it back
// for a task found again).
func (t *Task) SetStopPolicy(p StopPolicy) { p.record(t) }

// StopPolicy is how t is stopped: its recorded --stop-signal and
// --stop-timeout, the default for what it does not record (or records in
// a form btl cannot read: a hand-edited state).
func (t *Task) StopPolicy() StopPolicy {
	p := DefaultStop
	if t.StopSignal != "" {
		if sig, err := ParseStopSignal(t.StopSignal); err == nil {
			p.Signal = sig
		}
	}
	if t.StopTimeout != "" {
		if d, err := ParseStopTimeout(t.StopTimeout); err == nil {
			p.Timeout = d
		}
	}
	return p
}
