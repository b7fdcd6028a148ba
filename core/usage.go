package core

import (
	"context"

	"btl/internal/proc"
)

// Proc identifies one process across time (see proc.Proc): a task's main
// process and its helper are recorded as such.
type Proc = proc.Proc

// Usage is what a task's process tree uses at one moment.
type Usage = proc.Usage

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
	trees := make([]proc.Tree, len(tasks))
	for i, t := range tasks {
		trees[i] = proc.Tree{Leader: t.Proc(), Token: t.Token}
		if t.Helper != nil {
			trees[i].Roots = []proc.Proc{*t.Helper}
		}
	}
	return proc.Usages(trees)
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

// PortHolders reports which of ports some process on the machine listens
// on, with the PIDs of the caller's processes that hold each (none when
// only another user's do); see proc.PortHolders.
func PortHolders(ports []int) map[int][]int { return proc.PortHolders(ports) }
