package proc

import (
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

// Tree names the process tree of one task: its main process, its
// instance token and its helpers (see StopTree).
type Tree struct {
	Leader Proc
	Token  string
	Roots  []Proc
}

// Usages reads the usage of each process tree from one snapshot of the
// process table (and, for ports, one read of the socket tables). Trees
// with no live process get a zero Usage.
func Usages(ts []Tree) []Usage {
	// One tree with a live helper (a start's check of the instance it
	// replaces, a wait for a port): walked down from the helper, as a
	// stop does, without reading the rest of the process table.
	if len(ts) == 1 && ts[0].Token != "" {
		if infos, ok := subtreeInfos(ts[0].Leader, ts[0].Token, ts[0].Roots); ok {
			return usagesOf([][]ProcInfo{infos})
		}
	}
	return usagesIn(readProcTable(), ts)
}

func usagesIn(pt *procTable, ts []Tree) []Usage {
	trees := make([][]ProcInfo, len(ts))
	for i, t := range ts {
		if t.Token == "" && t.Leader.PID == 0 {
			continue
		}
		trees[i] = pt.members(t.Leader, t.Token, t.Roots)
	}
	return usagesOf(trees)
}

// usagesOf sums each tree's processes and finds their listening ports.
func usagesOf(trees [][]ProcInfo) []Usage {
	out := make([]Usage, len(trees))
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
