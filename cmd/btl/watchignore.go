package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"btl/internal/regular"
)

// defaultIgnores are never watched: version control, dependencies, build
// output, caches, logs and editors' swap files.
var defaultIgnores = []string{
	".git", ".hg", ".svn", "node_modules", "dist", "build", ".next", "target", ".venv", "__pycache__",
	"*.log", "*.swp", "*.swx", "*~", ".#*",
}

// ignorer tells which paths under the watched roots do not count: those
// with a component that matches a glob without a slash (node_modules,
// *.log), and those whose path from their root, or a parent's, matches a
// glob with one (a .gitignore's /dist, src/gen/).
type ignorer struct {
	roots []string            // watched directories
	names []string            // globs matched against each component
	paths map[string][]string // by root: globs matched against the relative path
}

// newIgnorer is the ignorer of roots: the defaults, extra (--ignore) and
// the patterns of each root's .gitignore (without negations, which it
// does not support).
func newIgnorer(roots []string, extra []string) *ignorer {
	ig := &ignorer{names: append(append([]string{}, defaultIgnores...), extra...), paths: map[string][]string{}}
	for _, r := range roots {
		if fi, err := os.Stat(r); err != nil || !fi.IsDir() {
			continue
		}
		ig.roots = append(ig.roots, r)
		for _, g := range readGitignore(filepath.Join(r, ".gitignore")) {
			ig.add(r, g)
		}
	}
	for _, g := range extra {
		if strings.Contains(g, "/") {
			for _, r := range ig.roots {
				ig.add(r, g)
			}
		}
	}
	return ig
}

// add records a pattern of root's .gitignore.
func (ig *ignorer) add(root, g string) {
	g = strings.TrimSuffix(g, "/")
	g = strings.TrimPrefix(g, "**/")
	if g == "" {
		return
	}
	if !strings.Contains(g, "/") {
		ig.names = append(ig.names, g)
		return
	}
	ig.paths[root] = append(ig.paths[root], strings.TrimPrefix(g, "/"))
}

// readGitignore returns the patterns of a .gitignore file.
func readGitignore(path string) []string {
	b, err := regular.ReadFile(path, 1<<20)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// ignored reports whether a change to path does not count.
func (ig *ignorer) ignored(path string) bool {
	for _, r := range ig.roots {
		rel, err := filepath.Rel(r, path)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		parts := strings.Split(rel, string(filepath.Separator))
		for _, c := range parts {
			for _, g := range ig.names {
				if ok, _ := filepath.Match(g, c); ok {
					return true
				}
			}
		}
		for i := range parts {
			prefix := strings.Join(parts[:i+1], "/")
			for _, g := range ig.paths[r] {
				if ok, _ := filepath.Match(g, prefix); ok {
					return true
				}
			}
		}
		return false
	}
	// A watched file, or its directory's other files.
	base := filepath.Base(path)
	for _, g := range ig.names {
		if ok, _ := filepath.Match(g, base); ok {
			return true
		}
	}
	return false
}

// underDir reports whether path is under a watched directory.
func (ig *ignorer) underDir(path string) bool {
	for _, r := range ig.roots {
		if rel, err := filepath.Rel(r, path); err == nil && !strings.HasPrefix(rel, "..") {
			return true
		}
	}
	return false
}
