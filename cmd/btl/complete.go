package main

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"btl/core"
)

// completeHashes offers the tracked tasks' hashes and names, each
// described by its command, for shells that show descriptions (zsh, fish).
func (e *env) completeHashes(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	dirs, err := core.DefaultDirs()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	st, err := core.ReadState(dirs)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, t := range st.Sorted() {
		if slices.Contains(args, t.Hash) || t.Name != "" && slices.Contains(args, t.Name) {
			continue
		}
		if t.Name != "" && strings.HasPrefix(t.Name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(t.Name, printable(t.Command)))
		}
		if strings.HasPrefix(t.Hash, toComplete) {
			out = append(out, cobra.CompletionWithDesc(t.Hash, printable(t.Command)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completionHelp says, per shell, where a user (not root) installs the
// completion script for every new shell.
var completionHelp = map[string]string{
	"bash": `Print the completion script for bash. It needs the bash-completion package
(apt install bash-completion, brew install bash-completion@2).

Try it in this shell:

	source <(btl completion bash)

Install it for your user, for every new shell:

	mkdir -p ~/.local/share/bash-completion/completions
	btl completion bash > ~/.local/share/bash-completion/completions/btl`,
	"zsh": `Print the completion script for zsh.

Install it for your user: put it in a directory on your fpath, before
compinit runs in ~/.zshrc:

	mkdir -p ~/.zfunc
	btl completion zsh > ~/.zfunc/_btl
	# in ~/.zshrc, before compinit:  fpath=(~/.zfunc $fpath)`,
	"fish": `Print the completion script for fish.

Install it for your user:

	mkdir -p ~/.config/fish/completions
	btl completion fish > ~/.config/fish/completions/btl.fish`,
}

// setupCompletion keeps cobra's completion command to the shells btl
// documents (bash, zsh, fish) and tells where a user installs each script.
func setupCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Short = "Print the shell completion script for bash, zsh or fish"
		c.Long = "Print the completion script for bash, zsh or fish: task hashes complete,\nwith their commands. See btl completion <shell> --help for how to install it."
		for _, sub := range c.Commands() {
			if help, ok := completionHelp[sub.Name()]; ok {
				sub.Long = help
			} else {
				c.RemoveCommand(sub)
			}
		}
	}
}

// completeStart completes the first word of a start: btl's own commands
// (which cobra adds), then programs on PATH and files, as a shell would
// for a command; later words are the command's own: files.
func completeStart(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	var out []cobra.Completion
	seen := map[string]bool{}
	if toComplete != "" && !strings.Contains(toComplete, "/") {
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				n := e.Name()
				if !strings.HasPrefix(n, toComplete) || seen[n] {
					continue
				}
				if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	// Files and directories, as the shell would offer them.
	dir, base := filepath.Split(toComplete)
	ents, _ := os.ReadDir(cmp.Or(dir, "."))
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, base) || strings.HasPrefix(n, ".") && !strings.HasPrefix(base, ".") {
			continue
		}
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 && isDir(filepath.Join(dir, n)) {
			out = append(out, dir+n+"/")
			continue
		}
		out = append(out, dir+n)
	}
	d := cobra.ShellCompDirectiveNoFileComp
	if len(out) == 1 && strings.HasSuffix(out[0], "/") {
		d |= cobra.ShellCompDirectiveNoSpace // a directory: go on into it
	}
	return out, d
}

// isDir reports whether path is, or links to, a directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
