package main

import (
	"errors"
	"os/exec"

	"btl/backend/fork"
	"btl/backend/launchd"
	"btl/backend/systemd"
	"btl/core"
)

// backends is the table of btl's backends, in the order auto mode tries
// them: systemd where a user manager answers, launchd on macOS, else
// fork, which runs anything anywhere (the last entry: auto mode's
// fallback, and the backend of state entries that name none). The only
// place that names a backend; a start that waits for launchd to release
// the task's label says so with say, where btl's other start lines go.
func backends(dirs core.Dirs, say func(string)) core.Registry {
	return core.Registry{
		{
			Name:   systemd.Name,
			Detect: systemd.Booted,
			// One connection, used for the whole command; New fails when
			// no user manager answers.
			Open: func() (core.Backend, error) { return systemd.New(dirs) },
		},
		{
			Name:   launchd.Name,
			Detect: launchd.Available,
			Open: func() (core.Backend, error) {
				if _, err := exec.LookPath("launchctl"); err != nil {
					return nil, errors.New("launchctl not found (launchd is macOS's service manager)")
				}
				b := launchd.New(dirs)
				b.Progress = say
				return b, nil
			},
			// Local Network privacy: a log showing EHOSTUNREACH.
			Note: func(t core.Task) string { return launchd.LocalNetworkNote(t.LogFile) },
		},
		{
			Name:   fork.Name,
			Detect: func() bool { return true },
			Open:   func() (core.Backend, error) { return fork.New(dirs), nil },
		},
	}
}

// taskNote is one line `btl show` adds about a task, from what its backend
// can tell of it, or "".
func taskNote(t core.Task) string {
	return backends(core.Dirs{}, nil).Note(t)
}
