package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"

	"btl/core"
)

// portFlags are options whose value is a TCP port.
var portFlags = map[string]bool{"-p": true, "--port": true, "-P": true, "--listen-port": true, "--http-port": true}

// namedPort matches an argument that names a port: --port=N, PORT=N (as
// env or make take it), host:N, :N, a URL's :N.
var namedPort = regexp.MustCompile(`^(?:--?[A-Za-z-]*port=|[A-Za-z_]*PORT=|.*:)(\d{1,5})/?(?:[/?#].*)?$`)

// commandPorts returns the TCP ports a command line names: a number after
// a port option, an argument such as --port=N, PORT=N or localhost:N, or
// a bare number from 1024 to 65535 (python3 -m http.server 8080).
func commandPorts(argv []string) []int {
	var out []int
	add := func(s string, low int) {
		if n, err := strconv.Atoi(s); err == nil && n >= low && n <= 65535 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for i, a := range argv {
		if i == 0 {
			continue
		}
		switch m := namedPort.FindStringSubmatch(a); {
		case portFlags[argv[i-1]]:
			add(a, 1)
		case m != nil:
			add(m[1], 1)
		case len(a) >= 4 && len(a) <= 5:
			add(a, 1024)
		}
	}
	return out
}

// warnHeldPorts says, right after a start, which ports the task's command
// line names (or its replaced instance listened on, before) are held by a
// process that is not the task: it may then fail to listen, after btl has
// returned. It reports whether it said anything.
func (e *env) warnHeldPorts(w io.Writer, task *core.Task, before []int) bool {
	ports := commandPorts(task.Argv)
	for _, p := range before {
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return false
	}
	held := core.PortHolders(ports)
	if len(held) == 0 {
		return false
	}
	own := core.TaskUsage(task).Ports
	var others []*core.Task
	if st, err := e.mgr.Snapshot(); err == nil {
		for _, t := range st.Sorted() {
			if t.Hash != task.Hash {
				others = append(others, t)
			}
		}
	}
	usages := core.Usages(others)
	said := false
	for _, p := range ports {
		pids, ok := held[p]
		if !ok || slices.Contains(own, p) {
			continue
		}
		by := "a process of another user"
		if len(pids) > 0 {
			by = "PID " + strconv.Itoa(pids[0])
		}
		for i, u := range usages {
			if slices.Contains(u.Ports, p) {
				t := others[i]
				by = fmt.Sprintf("task %s (%s in %s)", taskLabelLong(t), printable(t.Command), printable(t.Cwd))
				break
			}
		}
		fmt.Fprintf(w, "[btl] port %d is held by %s, not by this task; it may fail to listen there\n", p, by)
		said = true
	}
	return said
}
