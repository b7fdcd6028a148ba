package core

import (
	"strings"

	"golang.org/x/sys/unix"
)

// signalName returns "SIGTERM" for 15 and so on.
func signalName(sig int) string {
	if name := unix.SignalName(unix.Signal(sig)); name != "" {
		return name
	}
	return "signal " + strings.TrimPrefix(unix.Signal(sig).String(), "signal ")
}

// SignalName returns the name of signal sig, such as "SIGTERM".
func SignalName(sig int) string { return signalName(sig) }
