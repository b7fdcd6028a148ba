package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"btl/core"
)

func newShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:               "show <hash|name>",
		Short:             "Show everything btl knows about a task",
		Example:           "  btl show 93b8",
		Args:              exactlyOneHash,
		ValidArgsFunction: e.completeHashes,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := e.mgr.Show(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return e.writeShow(cmd.Context(), v, e.stats(cmd.Context(), []core.View{v})[0])
		},
	}
}

func exactlyOneHash(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageError("%s takes one hash (see btl list)", cmd.Name())
	}
	return nil
}

// writeShow prints btl show's lines for v, drawn from columns.
func (e *env) writeShow(ctx context.Context, v core.View, st taskStats) error {
	r := rowsOf([]core.View{v}, []taskStats{st}, func(t *core.Task) string { return e.mgr.Describe(ctx, t) })[0]
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 1, ' ', 0)
	for _, l := range showLines(r) {
		fmt.Fprintf(tw, "%s:\t%s\n", l[0], l[1])
	}
	return tw.Flush()
}
