package layers

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rule says which of btl's packages the non-test files under dir may
// import.
type rule struct {
	dir   string // relative to the module root; its subdirectories too
	allow func(file, imp string) bool
}

var rules = []rule{
	{"cmd/btl", func(file, imp string) bool {
		return !strings.HasPrefix(imp, "btl/backend/") || filepath.Base(file) == "backends.go"
	}},
	{"core", func(file, imp string) bool {
		return imp == "btl/core" || strings.HasPrefix(imp, "btl/core/") ||
			imp == "btl/internal/proc" || imp == "btl/internal/logfile" || imp == "btl/internal/regular" || imp == "btl/internal/dotenv" ||
			// The conformance suite hides environments from the scanner.
			imp == "btl/internal/proc/proctest" && under(file, "core/coretest")
	}},
	{"backend", func(file, imp string) bool {
		own := "btl/" + filepath.ToSlash(filepath.Dir(file))
		return !strings.HasPrefix(imp, "btl/cmd/") && (!strings.HasPrefix(imp, "btl/backend/") || imp == own)
	}},
	// The scanner reads environments through its own internal package;
	// proctest, the tests' view of the process table, reads the scanner
	// too. (Go lets only these two import internal/proc/internal/...)
	{"internal/proc", func(file, imp string) bool {
		return imp == "btl/internal/proc/internal/environ" || imp == "btl/internal/proc" && under(file, "internal/proc/proctest")
	}},
	{"internal/proc/internal/environ", none},
	{"internal/proc/proctest", func(file, imp string) bool {
		return imp == "btl/internal/proc" || imp == "btl/internal/proc/internal/environ"
	}},
	{"internal/logfile", func(file, imp string) bool { return imp == "btl/internal/regular" }},
	{"internal/logread", func(file, imp string) bool {
		return imp == "btl/internal/logfile" || imp == "btl/internal/regular"
	}},
	{"internal/regular", none},
	{"internal/reexec", none},
	{"internal/project", func(file, imp string) bool { return imp == "btl/internal/dotenv" }},
	{"internal/dotenv", none},
	{"internal/logpump", func(file, imp string) bool {
		return imp == "btl/internal/logfile" || imp == "btl/internal/reexec"
	}},
	// The fake launchctl is a program of its own: it knows nothing of btl.
	{"internal/fakelaunchctl", func(file, imp string) bool { return strings.HasPrefix(imp, "btl/internal/fakelaunchctl") }},
	{"internal/layers", none},
	// The benchmark driver drives btl from outside, as a user does; it
	// may read what btl writes and name the systemd units it makes.
	{"internal/benchmark", func(file, imp string) bool {
		return !strings.HasPrefix(imp, "btl/cmd/") && imp != "btl/internal/benchmark"
	}},
}

// none allows no package of btl.
func none(file, imp string) bool { return false }

// under reports whether file lies in dir or below it.
func under(file, dir string) bool {
	return strings.HasPrefix(filepath.ToSlash(file), dir+"/")
}

func TestImportRule(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	// Every package of btl has a rule: a new one must say what it may import.
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, r := range rules {
			if rel == r.dir || strings.HasPrefix(rel, r.dir+"/") {
				return nil
			}
		}
		t.Errorf("package %s has no import rule (add one here and to docs/architecture.md)", rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		checked := 0
		err := filepath.WalkDir(filepath.Join(root, r.dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			checked++
			for _, spec := range f.Imports {
				imp, _ := strconv.Unquote(spec.Path.Value)
				if imp == "btl" || strings.HasPrefix(imp, "btl/") {
					if !r.allow(rel, imp) {
						t.Errorf("%s imports %s, which the import rule forbids there (see docs/architecture.md)", rel, imp)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if checked == 0 {
			t.Errorf("no Go files under %s: the rule checks nothing", r.dir)
		}
	}
}
