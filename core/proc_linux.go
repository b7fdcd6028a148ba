package core

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LookupProc reads /proc/<pid>/stat. A zombie is reported with Zombie set.
func LookupProc(pid int) (ProcInfo, error) {
	if pid <= 0 {
		return ProcInfo{}, ErrNoProcess
	}
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcInfo{}, ErrNoProcess
	}
	info, err := parseStat(pid, b)
	if err != nil {
		return info, err
	}
	fi, err := os.Stat(dir + "/status")
	if err != nil {
		return ProcInfo{}, ErrNoProcess
	}
	info.UID = int(fi.Sys().(*syscall.Stat_t).Uid)
	return info, nil
}

// parseStat parses the content of /proc/<pid>/stat. The command name may
// hold spaces and parentheses, so fields are counted after the last ')'.
func parseStat(pid int, b []byte) (ProcInfo, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcInfo{}, fmt.Errorf("proc %d: malformed stat", pid)
	}
	// Fields from 3 (state) on; starttime is field 22.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ProcInfo{}, fmt.Errorf("proc %d: malformed stat", pid)
	}
	info := ProcInfo{PID: pid, Zombie: f[0] == "Z" || f[0] == "X"}
	var err error
	if info.PPID, err = strconv.Atoi(f[1]); err != nil {
		return info, fmt.Errorf("proc %d: malformed stat", pid)
	}
	if info.PGID, err = strconv.Atoi(f[2]); err != nil {
		return info, fmt.Errorf("proc %d: malformed stat", pid)
	}
	if info.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return info, fmt.Errorf("proc %d: malformed stat", pid)
	}
	return info, nil
}

// userProcs lists the live processes owned by uid.
func userProcs(uid int) []ProcInfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var out []ProcInfo
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		info, err := LookupProc(pid)
		if err != nil || info.UID != uid {
			continue
		}
		out = append(out, info)
	}
	return out
}

// hasEnv reports whether the environment of pid contains the entry kv.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for e := range bytes.SplitSeq(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}
