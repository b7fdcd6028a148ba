//go:build !linux

package fork

// becomeSubreaper does nothing where the system has no child subreapers:
// there, descendants that left the task are found by group and token.
func becomeSubreaper() {}
