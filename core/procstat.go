package core

import (
	"context"
	"slices"
	"time"
)

// Usage is what a task's process tree uses at one moment.
type Usage struct {
	PIDs   []int         // the live processes of the tree, ascending
	CPU    time.Duration // CPU time, user and system, of the tree's processes and the children they waited for
	Memory uint64        // resident memory of the tree, in bytes
	Ports  []int         // TCP ports the tree listens on, ascending, each once
}

// MemoryReporter is implemented by backends that account a task's memory
// themselves (systemd: the unit's cgroup MemoryCurrent). Where a backend
// does not, or cannot tell, the memory is the sum over the tree's
// processes.
type MemoryReporter interface {
	Memory(ctx context.Context, t Task) (bytes uint64, ok bool)
}

// Usages reads the usage of each task's process tree from one snapshot of
// the process table (and, for ports, one read of the socket tables).
// Tasks with no live process get a zero Usage.
func Usages(tasks []*Task) []Usage {
	pt := readProcTable()
	trees := make([][]ProcInfo, len(tasks))
	for i, t := range tasks {
		if t.Token == "" && t.PID == 0 {
			continue
		}
		var roots []Proc
		if t.Helper != nil {
			roots = []Proc{*t.Helper}
		}
		trees[i] = pt.members(t.Proc(), t.Token, roots)
	}
	out := make([]Usage, len(tasks))
	for i, tree := range trees {
		for _, p := range tree {
			out[i].PIDs = append(out[i].PIDs, p.PID)
			out[i].CPU += p.CPU
			out[i].Memory += p.RSS
		}
		slices.Sort(out[i].PIDs)
	}
	fillUsage(out)
	for i := range out {
		slices.Sort(out[i].Ports)
		out[i].Ports = slices.Compact(out[i].Ports)
	}
	return out
}

// TaskUsage is Usages for one task.
func TaskUsage(t *Task) Usage { return Usages([]*Task{t})[0] }

// Memory is the memory of t as its backend accounts it, where the backend
// does (see MemoryReporter).
func (m *Manager) Memory(ctx context.Context, t *Task) (uint64, bool) {
	b, err := m.backendFor(t)
	if err != nil {
		return 0, false
	}
	if r, ok := b.(MemoryReporter); ok {
		return r.Memory(ctx, *t)
	}
	return 0, false
}
