// Package reexec lets one binary play the helper parts btl re-executes
// itself as: the fork supervisor, the launchd launcher, the systemd log
// agent, the log pump. Each part registers, from its package's init, the
// environment variable that selects it; the program's main (and every test
// binary's TestMain) calls Init first. A binary that imports a backend can
// therefore never start one of that backend's helpers and get, instead of
// the helper, a second copy of itself.
package reexec

import (
	"fmt"
	"os"
)

type part struct {
	env string
	run func(value string) int
}

var parts []part

// Register makes the process run run, and exit with its result, when the
// environment variable env is set at Init. run gets the variable's value.
// It is meant to be called from init functions.
func Register(env string, run func(value string) int) {
	parts = append(parts, part{env, run})
}

// Init runs the part whose variable is set, and exits with its code. It
// returns when none is set: the process is not a helper.
func Init() {
	for _, p := range parts {
		if v, ok := os.LookupEnv(p.env); ok {
			os.Exit(p.run(v))
		}
	}
}

// SelfExe returns exe, or, when exe is empty, the path of the running
// executable: btl re-executes itself as a task's helper (supervisor,
// launcher, log agent, log pump).
func SelfExe(exe string) (string, error) {
	if exe != "" {
		return exe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	return exe, nil
}
