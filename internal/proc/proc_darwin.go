package proc

import (
	"time"

	"golang.org/x/sys/unix"
)

// p_stat of a stopped process and of a zombie, from <sys/proc.h>.
const (
	darwinSSTOP = 4
	darwinSZOMB = 5
)

// LookupProc asks the kern.proc.pid sysctl. A zombie is reported with
// Zombie set.
func LookupProc(pid int) (ProcInfo, error) {
	if pid <= 0 {
		return ProcInfo{}, ErrNoProcess
	}
	k, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(k.Proc.P_pid) != pid {
		return ProcInfo{}, ErrNoProcess
	}
	return kinfoToInfo(k), nil
}

func kinfoToInfo(k *unix.KinfoProc) ProcInfo {
	tv := k.Proc.P_starttime
	return ProcInfo{
		PID:     int(k.Proc.P_pid),
		PPID:    int(k.Eproc.Ppid),
		PGID:    int(k.Eproc.Pgid),
		UID:     int(k.Eproc.Pcred.P_ruid),
		Start:   uint64(tv.Sec)*1e6 + uint64(tv.Usec),
		Zombie:  k.Proc.P_stat == darwinSZOMB,
		Stopped: k.Proc.P_stat == darwinSSTOP,
	}
}

// userProcs lists the live processes whose real user is uid.
func userProcs(uid int) []ProcInfo {
	ks, err := unix.SysctlKinfoProcSlice("kern.proc.ruid", uid)
	if err != nil {
		return nil
	}
	out := make([]ProcInfo, 0, len(ks))
	for i := range ks {
		out = append(out, kinfoToInfo(&ks[i]))
	}
	return out
}

// statProcs is userProcs: the system tells the UID at no extra cost.
func statProcs(uid int) []ProcInfo { return userProcs(uid) }

// procDetails is not available on macOS without libproc: Details
// reports what the environment and sysctl tell.
func procDetails(pid int, start uint64) (argv []string, cwd string, started time.Time) {
	return nil, "", time.UnixMicro(int64(start)).UTC()
}

// helpersReap is false: macOS has no child subreapers, and a task's
// orphans leave its helper's tree.
const helpersReap = false

// childrenOf is not available on macOS: trees are found from the whole
// process table there.
func childrenOf(pid int) ([]int, bool) { return nil, false }
