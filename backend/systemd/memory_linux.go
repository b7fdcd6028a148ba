package systemd

import (
	"context"
	"math"

	"btl/core"
)

var _ core.MemoryReporter = (*Backend)(nil)

// Memory is the memory of t's unit as systemd accounts it: the cgroup's
// MemoryCurrent, which counts the whole tree and the page cache it
// caused. It reports false when systemd does not know it (no memory
// controller, MemoryAccounting off: MemoryCurrent is then "[not set]",
// UINT64_MAX on the bus), or when the unit runs another instance than t;
// btl then sums the tree's processes.
func (b *Backend) Memory(ctx context.Context, t core.Task) (uint64, bool) {
	if b.snap != nil {
		// btl list: the snapshot List took has every unit's MemoryCurrent.
		info, err := b.infoFor(ctx, t)
		if err != nil || !info.owns(t) || info.Memory == math.MaxUint64 || info.Memory == 0 {
			return 0, false
		}
		return info.Memory, true
	}
	p, err := b.conn.GetUnitTypePropertyContext(ctx, b.unitOf(t), "Service", "MemoryCurrent")
	if err != nil {
		return 0, false
	}
	mem, ok := p.Value.Value().(uint64)
	if !ok || mem == math.MaxUint64 || mem == 0 {
		return 0, false
	}
	if t.Token != "" {
		env, err := b.conn.GetUnitTypePropertyContext(ctx, b.unitOf(t), "Service", "Environment")
		if err != nil {
			return 0, false
		}
		if vars, _ := env.Value.Value().([]string); core.Getenv(vars, core.EnvInstance) != t.Token {
			return 0, false
		}
	}
	return mem, true
}
