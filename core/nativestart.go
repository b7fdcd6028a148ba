package core

import (
	"errors"
	"fmt"
)

// ErrNotText is wrapped by CheckNativeStart's error for a start whose
// program, directory, command or arguments are not valid UTF-8.
var ErrNotText = errors.New("is not valid UTF-8")

// notText is the error of a backend that cannot carry a spec that is not
// valid UTF-8.
func notText(backend string) error {
	return fmt.Errorf("backend %s cannot run a command or directory that %w (use --backend fork)", backend, ErrNotText)
}

// CheckNativeStart is what a backend that hands spec to a service manager
// (systemd, launchd) checks before it starts anything, named backend in
// the error: the manager takes only text (D-Bus, property lists; fork runs
// any bytes), and it would report a program it cannot execute only once
// it tried, and in its own terms (203/EXEC, 78), so the program that
// Prepare resolved is looked up again, in the caller's terms (an
// *ExecError naming argv[0]).
func CheckNativeStart(backend string, spec Spec) error {
	if len(spec.Argv) == 0 {
		return fmt.Errorf("%s: no command given", backend)
	}
	if !SpecIsText(spec) {
		return notText(backend)
	}
	if _, err := LookPath(spec.Path, spec.Dir, spec.Env); err != nil {
		var ee *ExecError
		if errors.As(err, &ee) {
			return &ExecError{Name: spec.Argv[0], Err: ee.Err}
		}
		return err
	}
	return nil
}
