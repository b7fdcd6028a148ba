package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"btl/core"
)

// completeHashes offers the tracked tasks' hashes, each described by its
// command, for shells that show descriptions (zsh, fish).
func (e *env) completeHashes(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	dirs, err := core.DefaultDirs()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	st, err := (&core.Store{Dir: dirs.Data}).Read()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, t := range st.Sorted() {
		if strings.HasPrefix(t.Hash, toComplete) && !slices.Contains(args, t.Hash) {
			out = append(out, cobra.CompletionWithDesc(t.Hash, printable(t.Command)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
