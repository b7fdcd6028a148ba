package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"btl/core"
)

// pm2Verbs are pm2's commands that people arriving from pm2 type, and the
// btl command that does the same.
var pm2Verbs = map[string]string{
	"delete":     "btl kill",
	"del":        "btl kill",
	"status":     "btl list",
	"jlist":      "btl list -o json",
	"prettylist": "btl list -o json",
	"monit":      "btl list",
	"describe":   "btl show",
	"info":       "btl show",
	"reload":     "btl restart",
	"flush":      "btl clean --all",
	"start":      "btl <command>",
}

// suggest returns the btl command meant by word, a first word that is not a
// program on PATH, or "" when it looks like none: a pm2 verb, or a btl
// command one or two typing mistakes away.
func suggest(root *cobra.Command, word string) string {
	if strings.ContainsRune(word, '/') {
		return ""
	}
	if s, ok := pm2Verbs[word]; ok {
		return s
	}
	best, bestD := "", 3
	for _, c := range root.Commands() {
		if c.Hidden || !c.IsAvailableCommand() {
			continue
		}
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			limit := 2
			if len(word) <= 4 {
				limit = 1
			}
			if d := editDistance(word, n); d <= limit && d < bestD {
				best, bestD = "btl "+c.Name(), d
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent characters.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// withSuggestion adds "did you mean" to err when it says that argv[0], the
// first word of a start, is not a program and the word looks like a btl
// command. The exit code stays 127.
func withSuggestion(root *cobra.Command, argv []string, err error) error {
	var xe *core.ExecError
	if len(argv) == 0 || !errors.As(err, &xe) || !errors.Is(err, core.ErrNotFound) || xe.Name != argv[0] {
		return err
	}
	s := suggest(root, argv[0])
	if s == "" {
		return err
	}
	return fmt.Errorf("%w; did you mean `%s`?", err, s)
}

// markStart returns args with "--" put before the first word of the
// command when a start flag (--name, --wait-port, ...) comes before it:
// that word is then the program to run, even where it is also the name or
// alias of a btl command (btl --name x ls runs ls). An alias is a btl
// command only as the first word (btl --backend fork ls runs ls; btl
// --backend fork list lists). With a flag cobra does not know, args are
// left to cobra.
func markStart(root *cobra.Command, args []string) []string {
	start := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args
		case a == "-" || !strings.HasPrefix(a, "-"):
			if !start && (i == 0 || !isAlias(root, a)) {
				return args
			}
			return append(append(append([]string{}, args[:i]...), "--"), args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := root.Flags().Lookup(name)
		if !strings.HasPrefix(a, "--") {
			f = nil
			if len(name) == 1 {
				f = root.Flags().ShorthandLookup(name)
			}
		}
		if f == nil {
			if pf := root.PersistentFlags().Lookup(name); pf != nil && strings.HasPrefix(a, "--") {
				if !hasValue && pf.NoOptDefVal == "" {
					i++
				}
				continue
			}
			return args
		}
		if root.PersistentFlags().Lookup(f.Name) == nil {
			start = true
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++
		}
	}
	return args
}

// isAlias reports whether word is an alias of a btl command, not its name.
func isAlias(root *cobra.Command, word string) bool {
	for _, c := range root.Commands() {
		if c.Name() != word && c.HasAlias(word) {
			return true
		}
	}
	return false
}
