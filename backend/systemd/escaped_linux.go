package systemd

import (
	"os"
	"slices"
	"strings"

	"btl/core"
	"btl/internal/proc"
)

// mayHaveEscaped reports whether a process of the caller that carries the
// instance token may live outside the task's unit: any process of the
// caller whose environment carries it, except those inside another btl
// task unit's cgroup (another task's processes; the stop of that task
// would reach them, and a process of this task cannot be there unless it
// moved itself into another task's unit). It reads the owner of every
// process (one stat), the cgroup of the caller's own, and the environment
// only of those outside btl task units: with many tasks running, most
// processes of the user are theirs, and their environments are not read.
// When /proc cannot be listed it answers true.
//
// scopes names the scope units (run-*.scope) such processes are in, so
// that the stop can make systemd forget them once they are empty.
func mayHaveEscaped(own, token string) (escaped bool, scopes []string) {
	cgroups, ok := proc.EnvCarriers(os.Getuid(), core.EnvInstance+"="+token, func(cg string) bool {
		return inOtherTaskUnit(cg, own)
	})
	if !ok {
		return true, nil
	}
	for _, cg := range cgroups {
		if sc := scopeOf(cg); sc != "" && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return len(cgroups) > 0, scopes
}

// scopeOf returns the scope unit a /proc/<pid>/cgroup text places the
// process in, in systemd's hierarchy, or "".
func scopeOf(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[1] != "" && f[1] != "name=systemd" {
			continue
		}
		if seg := f[2][strings.LastIndexByte(f[2], '/')+1:]; strings.HasSuffix(seg, ".scope") {
			return seg
		}
	}
	return ""
}

// inOtherTaskUnit reports whether a /proc/<pid>/cgroup text places the
// process inside a btl task unit other than own, in the hierarchy systemd
// keeps its units in: the unified one ("0::"), or name=systemd of cgroup v1.
func inOtherTaskUnit(cgroup, own string) bool {
	for _, line := range strings.Split(cgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[1] != "" && f[1] != "name=systemd" {
			continue
		}
		for _, seg := range strings.Split(f[2], "/") {
			if _, _, ok := hashOfUnit(seg); ok && seg != own {
				return true
			}
		}
	}
	return false
}
