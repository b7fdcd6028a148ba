package core

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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
	// The real UID from the status text, not the file's owner: /proc
	// shows a process whose memory is already released (on its way out)
	// as root's, though it still holds its files and sockets.
	st, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ProcInfo{}, ErrNoProcess
	}
	uid, ok := statusUID(st)
	if !ok {
		return ProcInfo{}, fmt.Errorf("proc %d: malformed status", pid)
	}
	info.UID = uid
	return info, nil
}

// statusUID returns the real UID from the content of /proc/<pid>/status.
func statusUID(b []byte) (int, bool) {
	_, rest, ok := bytes.Cut(b, []byte("\nUid:"))
	if !ok {
		return 0, false
	}
	f := strings.Fields(string(rest[:min(len(rest), 64)]))
	if len(f) == 0 {
		return 0, false
	}
	uid, err := strconv.Atoi(f[0])
	return uid, err == nil
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

// procEnv returns the environment pid started with, one entry each.
func procEnv(pid int) [][]byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
}

// procDetails reads the argv and working directory of pid, and when it
// started.
func procDetails(pid int, start uint64) (argv []string, cwd string, started time.Time) {
	dir := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		for a := range bytes.SplitSeq(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
			argv = append(argv, string(a))
		}
	}
	cwd, _ = os.Readlink(dir + "/cwd")
	// Start is in clock ticks since boot; USER_HZ is 100 on Linux.
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		var up float64
		if _, err := fmt.Sscan(string(b), &up); err == nil {
			since := time.Duration((up - float64(start)/100) * float64(time.Second))
			started = time.Now().Add(-since).UTC()
		}
	}
	return argv, cwd, started
}
