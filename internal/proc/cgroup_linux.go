package proc

import (
	"os"
	"strconv"
	"syscall"
)

// EnvCarriers returns the /proc/<pid>/cgroup text of every process of uid
// (other than this one) whose environment holds the entry kv, leaving out
// before their environment is read the processes whose cgroup text skip
// reports true: with many tasks running, most of a user's processes are
// theirs, and the owner of each costs one stat, its cgroup one small read.
// ok is false when /proc cannot be listed.
func EnvCarriers(uid int, kv string, skip func(cgroup string) bool) (cgroups []string, ok bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, false
	}
	names, err := d.Readdirnames(-1)
	_ = d.Close()
	if err != nil {
		return nil, false
	}
	self := os.Getpid()
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+name, &st) != nil || int(st.Uid) != uid {
			continue
		}
		cg, err := os.ReadFile("/proc/" + name + "/cgroup")
		if err == nil && skip != nil && skip(string(cg)) {
			continue
		}
		if hasEnv(pid, kv) {
			cgroups = append(cgroups, string(cg))
		}
	}
	return cgroups, true
}
