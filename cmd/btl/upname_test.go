package main

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"btl/core"
	"btl/internal/project"
)

func TestTaskName(t *testing.T) {
	sum := sha256.Sum256([]byte("/b/blog"))
	blogHex := hex.EncodeToString(sum[:3])
	view := func(name, project, entry, hash string) core.View {
		return core.View{Task: &core.Task{Name: name, Project: project, Entry: entry, Hash: hash}}
	}
	for _, c := range []struct {
		name  string
		views []core.View
		entry string
		old   *core.View
		want  string
	}{
		{"free", nil, "web", nil, "web"},
		{"taken by another project", []core.View{view("web", "/a/shop", "web", "1")}, "web", nil, "blog.web"},
		{"taken by a hand start", []core.View{view("web", "", "", "1")}, "web", nil, "blog.web"},
		{"the task it replaces", []core.View{view("web", "", "", "h")}, "web", nil, "web"},
		{"its own", []core.View{view("web", "/b/blog", "web", "1")}, "web", nil, "web"},
		{"both taken", []core.View{view("web", "/a/shop", "web", "1"), view("blog.web", "/c/blog", "web", "2")}, "web", nil, "blog-" + blogHex + ".web"},
		{"reads as a hash", nil, "cafe", nil, "blog.cafe"},
		{"kept", []core.View{view("web", "/a/shop", "web", "1")}, "web", &core.View{Task: &core.Task{Name: "blog.web"}}, "blog.web"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := taskName(c.views, "/b/blog", c.entry, "h", c.old)
			if got != c.want {
				t.Errorf("taskName = %q, want %q", got, c.want)
			}
		})
	}
}

func TestNameSafe(t *testing.T) {
	for in, want := range map[string]string{
		"shop":                "shop",
		"my app":              "my-app",
		".hidden":             "hidden",
		"naïve":               "na--ve",
		"a-very-long-project": "a-very-long-pro",
		"---":                 "project",
	} {
		if got := nameSafe(in); got != want {
			t.Errorf("nameSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDefinition: the digest changes with what makes the task, not with
// the caller's environment.
func TestDefinition(t *testing.T) {
	spec := func(dir string, argv ...string) core.Spec {
		return core.Spec{Dir: dir, Argv: argv, Env: []string{"HOME=/h"}}
	}
	base := definition("/p", spec("/p", "npm", "run", "dev"), []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Healthy}})
	other := spec("/p", "npm", "run", "dev")
	other.Env = []string{"HOME=/elsewhere", "TERM=xterm"}
	if got := definition("/p", other, []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Healthy}}); got != base {
		t.Errorf("the caller's environment changed the definition")
	}
	restart := spec("/p", "npm", "run", "dev")
	restart.Restart = core.RestartPolicy{Mode: core.RestartAlways, Max: 3}
	for name, d := range map[string]string{
		"command":    definition("/p", spec("/p", "npm", "start"), []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Healthy}}),
		"directory":  definition("/p", spec("/p/web", "npm", "run", "dev"), []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Healthy}}),
		"project":    definition("/q", spec("/p", "npm", "run", "dev"), []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Healthy}}),
		"variables":  definition("/p", spec("/p", "npm", "run", "dev"), []string{"A=2"}, []project.Dep{{Name: "api", Condition: project.Healthy}}),
		"dependency": definition("/p", spec("/p", "npm", "run", "dev"), []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Started}}),
		"restart":    definition("/p", restart, []string{"A=1"}, []project.Dep{{Name: "api", Condition: project.Healthy}}),
	} {
		if d == base {
			t.Errorf("a change of %s left the definition as it was", name)
		}
	}
}
