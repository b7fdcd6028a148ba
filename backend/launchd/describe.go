package launchd

import (
	"context"
	"os"
	"strconv"
	"strings"

	"btl/core"
)

var _ core.Describer = (*Backend)(nil)

// Describe returns the launchctl command that prints t's agent: its
// recorded service target, or its label in the domain new agents go to.
func (b *Backend) Describe(ctx context.Context, t core.Task) string {
	if strings.Contains(t.Unit, "/") { // the service target itself
		return "launchctl print " + t.Unit
	}
	dom := "gui/" + strconv.Itoa(os.Getuid())
	if d, err := b.Domain(ctx); err == nil {
		dom = d
	}
	return "launchctl print " + dom + "/" + t.Unit
}
