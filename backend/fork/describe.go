package fork

import (
	"context"
	"strconv"

	"btl/core"
)

var _ core.Describer = (*Backend)(nil)

// Describe returns the ps command that shows t's session: the task's
// process and what it started there.
func (b *Backend) Describe(ctx context.Context, t core.Task) string {
	return "ps -o pid,pgid,stat,etime,args -s " + strconv.Itoa(t.PID)
}
