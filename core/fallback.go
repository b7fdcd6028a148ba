package core

import (
	"context"
	"errors"
	"fmt"
)

// Refusal is the error of a backend that cannot run a task another
// backend can (launchd: a folder macOS protects, or launchd refusing the
// agent; systemd and launchd: bytes that are not UTF-8). With a Fallback
// (auto mode), the Manager starts the task with that instead.
type Refusal struct {
	Reason string // why, in a few words: "~/Documents is protected"
	Err    error  // the whole error, for a backend the user named
}

func (r *Refusal) Error() string { return r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// Refuser is implemented by backends that cannot run every task. Refuse
// returns a *Refusal for a spec the backend would refuse, before anything
// is stopped or started, and nil when it can try.
type Refuser interface {
	Refuse(spec Spec) error
}

// ByteCarrier is implemented by backends that run a program, arguments
// and directory that are not valid UTF-8 as they are (fork: execve takes
// bytes). The native records of the others (D-Bus, property lists) take
// only text: the Manager refuses such a spec for them.
type ByteCarrier interface {
	CarriesBytes()
}

// Fallback reports a start that another backend ran because the one
// chosen refused the task (auto mode): Manager.OnFallback receives it.
type Fallback struct {
	From, To string // the backend that refused the task, the one that ran it
	Reason   string // Refusal.Reason
}

// String is the note btl prints, once, for f.
func (f Fallback) String() string {
	return fmt.Sprintf("%s cannot run this task (%s); started it with the %s backend", f.From, f.Reason, f.To)
}

// note is what the task's record keeps of f (Task.Fallback).
func (f Fallback) note() string { return "not " + f.From + ": " + f.Reason }

// refusal returns why b would refuse spec, without asking it to start
// anything: a *Refusal, or nil when it can try.
func refusal(b Backend, spec Spec) error {
	if _, ok := b.(ByteCarrier); !ok && !SpecIsText(spec) {
		return &Refusal{Reason: "command or directory not valid UTF-8", Err: notText(b.Name())}
	}
	if r, ok := b.(Refuser); ok {
		return r.Refuse(spec)
	}
	return nil
}

// chooseBackend returns the backend that starts spec: the one spec names
// (restart: the one the task ran with), else Backend; and when that one
// refuses spec and the Manager has a Fallback, the Fallback, with why.
func (m *Manager) chooseBackend(spec Spec) (Backend, *Fallback, error) {
	b := m.Backend
	if spec.Backend != "" {
		var err error
		if b, err = m.backendNamed(spec.Backend); err != nil {
			return nil, nil, err
		}
	}
	if err := refusal(b, spec); err != nil {
		return m.fallBack(b, err)
	}
	return b, nil, nil
}

// fallBack returns the Fallback for a task that from refused with err,
// or err when there is none to take it.
func (m *Manager) fallBack(from Backend, err error) (Backend, *Fallback, error) {
	var r *Refusal
	if m.Fallback == nil || from.Name() == m.Fallback.Name() || !errors.As(err, &r) {
		return nil, nil, err
	}
	return m.Fallback, &Fallback{From: from.Name(), To: m.Fallback.Name(), Reason: r.Reason}, nil
}

// start starts spec with b, or with the Fallback when b refuses it as it
// starts (launchd refusing the agent). It returns the backend that ran
// the task, and fb, or the fallback it took. record is called with the
// Fallback before it starts the task, to record its intent anew.
func (m *Manager) start(ctx context.Context, b Backend, fb *Fallback, spec Spec, record func(Backend) error) (Started, Backend, *Fallback, error) {
	got, err := b.Start(ctx, spec)
	if err == nil || fb != nil {
		return got, b, fb, err
	}
	other, fb, ferr := m.fallBack(b, err)
	if ferr != nil {
		return got, b, nil, err
	}
	// The start's intent names the backend that runs the task, so that a
	// btl that dies now leaves it to be found and stopped by that one.
	if rerr := record(other); rerr != nil {
		return got, b, nil, fmt.Errorf("%w (after %s: %v)", rerr, b.Name(), err)
	}
	got, ferr = other.Start(ctx, spec)
	if ferr != nil {
		return got, other, fb, fmt.Errorf("%w (after %s: %v)", ferr, b.Name(), err)
	}
	return got, other, fb, nil
}
