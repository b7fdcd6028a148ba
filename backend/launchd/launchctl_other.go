//go:build !darwin

package launchd

// defaultLaunchctl is found in PATH where launchd does not exist: the tests
// put the fake launchctl there.
const defaultLaunchctl = "launchctl"
