package main

import (
	"fmt"
	"os/exec"

	"btl/backend/fork"
	"btl/backend/launchd"
	"btl/backend/systemd"
	"btl/core"
)

// unnamedBackend started the tasks whose state entries name no backend:
// those written before btl had several backends.
const unnamedBackend = fork.Name

// selectBackend returns the backend named by --backend or BTL_BACKEND;
// "" and "auto" pick the best one available here: systemd where a user
// manager answers, launchd on macOS, else fork.
func selectBackend(name string, dirs core.Dirs, say func(string)) (core.Backend, error) {
	switch name {
	case "", "auto":
		// New fails when no user manager answers: one connection, used
		// for the whole command.
		if systemd.Booted() {
			if b, err := systemd.New(dirs); err == nil {
				return b, nil
			}
		}
		if launchd.Available() {
			// What launchd cannot run (a protected folder, a refusal)
			// starts with fork.
			return &launchd.Fallback{Backend: newLaunchd(dirs, say), Other: fork.New(dirs)}, nil
		}
		return fork.New(dirs), nil
	}
	return openBackend(name, dirs, say)
}

// openBackend returns the named backend, or an error when it is unknown or
// not available on this machine.
func openBackend(name string, dirs core.Dirs, say func(string)) (core.Backend, error) {
	switch name {
	case fork.Name:
		return fork.New(dirs), nil
	case systemd.Name:
		b, err := systemd.New(dirs)
		if err != nil {
			return nil, fmt.Errorf("backend systemd: %w", err)
		}
		return b, nil
	case launchd.Name:
		if _, err := exec.LookPath("launchctl"); err != nil {
			return nil, fmt.Errorf("backend launchd: launchctl not found (launchd is macOS's service manager)")
		}
		return newLaunchd(dirs, say), nil
	}
	return nil, usageError("unknown backend %q (want auto, fork, systemd or launchd)", name)
}

// availableBackends names the backends that may hold tasks on this
// machine, for list and re-adoption to ask: fork everywhere, systemd where
// the machine was booted with it, launchd where launchctl exists.
func availableBackends() []string {
	names := []string{fork.Name}
	if systemd.Booted() {
		names = append(names, systemd.Name)
	}
	if launchd.Available() {
		names = append(names, launchd.Name)
	}
	return names
}

// forSpec returns the backend to start spec with: b, unless b cannot carry
// spec's bytes (D-Bus and property lists take only UTF-8). Then auto mode
// falls back to fork, and a backend named by the user is a one-line error.
func forSpec(b core.Backend, auto bool, spec core.Spec, dirs core.Dirs) (core.Backend, error) {
	if b.Name() == fork.Name || core.SpecIsText(spec) {
		return b, nil
	}
	if auto {
		return fork.New(dirs), nil
	}
	return nil, fmt.Errorf("backend %s cannot run a command or directory that is not valid UTF-8 (use --backend fork)", b.Name())
}

// newLaunchd returns the launchd backend; a start that waits for launchd
// to release the task's label says so with say, where btl's other start
// lines go.
func newLaunchd(dirs core.Dirs, say func(string)) *launchd.Backend {
	b := launchd.New(dirs)
	b.Progress = say
	return b
}

// taskNote is one line `btl show` adds about a task, from what its backend
// can tell of it (launchd: a log showing EHOSTUNREACH, Local Network
// privacy), or "".
func taskNote(t core.Task) string {
	if t.Backend == launchd.Name {
		return launchd.LocalNetworkNote(t.LogFile)
	}
	return ""
}
