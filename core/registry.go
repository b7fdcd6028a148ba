package core

import (
	"errors"
	"fmt"
	"strings"
)

// Registered is one backend btl can run tasks with, an entry of the one
// table of backends (the wiring in cmd/btl/backends.go lists them): what
// kardianos/service calls a system, with its Detect.
type Registered struct {
	Name string
	// Detect reports, without opening the backend, whether it may run
	// tasks on this machine (systemd: booted with it; launchd: macOS with
	// launchctl). List and re-adoption ask every backend detected here.
	Detect func() bool
	// Open opens the backend; its error says why it cannot be used here
	// (no user manager answers, no launchctl).
	Open func() (Backend, error)
	// Note, when set, is one line `btl show` adds about a task of the
	// backend, from what the backend can tell of it, or "".
	Note func(t Task) string
}

// Registry is the table of backends, in the order auto mode tries them.
// Its last entry runs any task on any machine: the backend of state
// entries that name none (written before btl had several), and auto
// mode's fallback for a task the backend it picked refuses.
type Registry []Registered

// ErrUnknownBackend is wrapped by the error for a backend name that is
// not in the registry.
var ErrUnknownBackend = errors.New("unknown backend")

// Auto is the name that asks for the first backend available here.
const Auto = "auto"

// Choose returns the backend named name, and nil for fallback: a backend
// the user names runs the task or refuses it. "" and Auto pick the first
// backend of r that is detected here and opens; then fallback is the
// last entry, unless that is the one picked.
func (r Registry) Choose(name string) (b, fallback Backend, err error) {
	if name != "" && name != Auto {
		b, err = r.Open(name)
		return b, nil, err
	}
	for i, e := range r {
		if i < len(r)-1 && (e.Detect == nil || !e.Detect()) {
			continue
		}
		if b, err = e.Open(); err != nil {
			if i == len(r)-1 {
				return nil, nil, fmt.Errorf("backend %s: %w", e.Name, err)
			}
			continue
		}
		if i < len(r)-1 {
			fallback, err = r.Open(r.Unnamed())
		}
		return b, fallback, err
	}
	return nil, nil, errors.New("no backends")
}

// Open returns the backend named name, or an error when it is unknown
// (wrapping ErrUnknownBackend) or cannot be used here.
func (r Registry) Open(name string) (Backend, error) {
	for _, e := range r {
		if e.Name == name {
			b, err := e.Open()
			if err != nil {
				return nil, fmt.Errorf("backend %s: %w", name, err)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w %q (want %s)", ErrUnknownBackend, name, r.Choices())
}

// Detected names the backends that may hold tasks on this machine, for
// List and re-adoption to ask (Manager.Names): those detected here, and
// the last entry, which is everywhere.
func (r Registry) Detected() []string {
	var names []string
	for i, e := range r {
		if i == len(r)-1 || e.Detect != nil && e.Detect() {
			names = append(names, e.Name)
		}
	}
	return names
}

// Unnamed is the backend of state entries that name none: the last entry.
func (r Registry) Unnamed() string {
	if len(r) == 0 {
		return ""
	}
	return r[len(r)-1].Name
}

// Choices renders the names --backend takes: "auto, systemd, launchd or
// fork".
func (r Registry) Choices() string {
	names := []string{Auto}
	for _, e := range r {
		names = append(names, e.Name)
	}
	last := len(names) - 1
	return strings.Join(names[:last], ", ") + " or " + names[last]
}

// Note is the line `btl show` adds about t from its backend's entry, or "".
func (r Registry) Note(t Task) string {
	for _, e := range r {
		if e.Name == t.BackendName() && e.Note != nil {
			return e.Note(t)
		}
	}
	return ""
}
