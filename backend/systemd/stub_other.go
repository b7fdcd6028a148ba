//go:build !linux

package systemd

import (
	"context"
	"time"

	"btl/core"
)

// Backend is unavailable on this system; New always fails.
type Backend struct{}

var _ core.Backend = (*Backend)(nil)

// New returns an error wrapping ErrUnavailable: systemd runs on Linux only.
func New(dirs core.Dirs) (*Backend, error) { return nil, ErrUnavailable }

// Booted reports false: systemd runs on Linux only.
func Booted() bool { return false }

// Close does nothing.
func (b *Backend) Close() error { return nil }

// Name returns "systemd".
func (b *Backend) Name() string { return Name }

// Start fails with ErrUnavailable.
func (b *Backend) Start(ctx context.Context, spec core.Spec) (core.Started, error) {
	return core.Started{}, ErrUnavailable
}

// Stop fails with ErrUnavailable.
func (b *Backend) Stop(ctx context.Context, t core.Task, grace time.Duration) error {
	return ErrUnavailable
}

// Inspect fails with ErrUnavailable.
func (b *Backend) Inspect(ctx context.Context, t core.Task) (core.Status, error) {
	return core.Status{}, ErrUnavailable
}

// List returns nil.
func (b *Backend) List(ctx context.Context) ([]core.Task, error) { return nil, nil }

// SyncLog fails with ErrUnavailable.
func (b *Backend) SyncLog(ctx context.Context, t core.Task) error { return ErrUnavailable }

// Release fails with ErrUnavailable.
func (b *Backend) Release(ctx context.Context, t core.Task) error { return ErrUnavailable }
