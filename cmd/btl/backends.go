package main

import (
	"btl/backend/fork"
	"btl/core"
)

// selectBackend returns the backend named by --backend or BTL_BACKEND;
// "" and "auto" pick the best one available here.
func selectBackend(name string, dirs core.Dirs) (core.Backend, error) {
	switch name {
	case "", "auto":
		return fork.New(dirs), nil
	}
	return openBackend(name, dirs)
}

// openBackend returns the named backend, or an error when it is unknown or
// not available on this machine.
func openBackend(name string, dirs core.Dirs) (core.Backend, error) {
	switch name {
	case fork.Name:
		return fork.New(dirs), nil
	}
	return nil, usageError("unknown backend %q (want auto, fork, systemd or launchd)", name)
}
