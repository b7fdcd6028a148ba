package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LookupProc reads /proc/<pid>/stat. A zombie is reported with Zombie set.
func LookupProc(pid int) (ProcInfo, error) {
	return lookupProc(pid, -1)
}

// lookupProc is LookupProc, reading the status first: a process whose real
// UID is not onlyUID (unless it is -1) is ErrNoProcess, at the cost of one
// file read.
func lookupProc(pid, onlyUID int) (ProcInfo, error) {
	if pid <= 0 {
		return ProcInfo{}, ErrNoProcess
	}
	dir := "/proc/" + strconv.Itoa(pid)
	var buf [4096]byte
	// The real UID from the status text, not the file's owner: /proc
	// shows a process whose memory is already released (on its way out),
	// or that made itself non-dumpable, as root's.
	st, err := readSmall(dir+"/status", buf[:])
	if err != nil {
		return ProcInfo{}, ErrNoProcess
	}
	uid, ok := statusUID(st)
	if !ok {
		return ProcInfo{}, fmt.Errorf("proc %d: malformed status", pid)
	}
	if onlyUID >= 0 && uid != onlyUID {
		return ProcInfo{}, ErrNoProcess
	}
	b, err := readSmall(dir+"/stat", buf[:])
	if err != nil {
		return ProcInfo{}, ErrNoProcess
	}
	info, err := parseStat(pid, b)
	if err != nil {
		return info, err
	}
	info.UID = uid
	return info, nil
}

// readSmall reads a small file into buf with plain system calls (no
// poller registration, which os.ReadFile tries for every file). A file
// longer than buf is cut at its size.
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(fd) }()
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
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

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat: 100
// on every architecture Linux exposes to user space.
const clockTicks = 100

// parseStat parses the content of /proc/<pid>/stat. The command name may
// hold spaces and parentheses, so fields are counted after the last ')'.
func parseStat(pid int, b []byte) (ProcInfo, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcInfo{}, fmt.Errorf("proc %d: malformed stat", pid)
	}
	// Fields from 3 (state) on; utime to cstime are 14-17, starttime is
	// 22, rss 24. Only the fields needed are cut out, without splitting
	// the rest.
	var f [22][]byte
	n := 0
	for rest := b[i+1:]; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " ")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
	}
	if n < 20 { // through starttime; rss may be cut off
		return ProcInfo{}, fmt.Errorf("proc %d: malformed stat", pid)
	}
	info := ProcInfo{PID: pid, Zombie: string(f[0]) == "Z" || string(f[0]) == "X", Stopped: string(f[0]) == "T" || string(f[0]) == "t"}
	var err error
	if info.PPID, err = strconv.Atoi(string(f[1])); err != nil {
		return info, fmt.Errorf("proc %d: malformed stat", pid)
	}
	if info.PGID, err = strconv.Atoi(string(f[2])); err != nil {
		return info, fmt.Errorf("proc %d: malformed stat", pid)
	}
	if info.Start, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return info, fmt.Errorf("proc %d: malformed stat", pid)
	}
	var ticks uint64
	for _, field := range f[11:15] {
		n, _ := strconv.ParseUint(string(field), 10, 64)
		ticks += n
	}
	info.CPU = time.Duration(ticks) * time.Second / clockTicks
	if pages, err := strconv.ParseInt(string(f[21]), 10, 64); err == nil && pages > 0 {
		info.RSS = uint64(pages) * uint64(os.Getpagesize())
	}
	return info, nil
}

// userProcs lists the live processes owned by uid.
func userProcs(uid int) []ProcInfo {
	var out []ProcInfo
	for _, pid := range pids() {
		info, err := lookupProc(pid, uid)
		if err != nil {
			continue
		}
		out = append(out, info)
	}
	return out
}

// pids lists the PIDs in /proc.
func pids() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer func() { _ = d.Close() }()
	names, _ := d.Readdirnames(-1)
	out := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// statProcs lists every live process as its stat line tells, UID -1
// (unknown): one file read per process instead of two.
func statProcs(int) []ProcInfo {
	var out []ProcInfo
	var buf [4096]byte
	for _, pid := range pids() {
		b, err := readSmall("/proc/"+strconv.Itoa(pid)+"/stat", buf[:])
		if err != nil {
			continue
		}
		info, err := parseStat(pid, b)
		if err != nil {
			continue
		}
		info.UID = -1
		out = append(out, info)
	}
	return out
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

// childrenOf lists the PIDs of pid's live children, from the children
// file of each of its threads (a child belongs to the thread that forked
// it, or that it was reparented to). ok is false when the kernel does not
// provide these files (CONFIG_PROC_CHILDREN) or pid is gone.
func childrenOf(pid int) (pids []int, ok bool) {
	if !haveChildren() {
		return nil, false
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	d, err := os.Open(dir)
	if err != nil {
		return nil, false
	}
	tids, err := d.Readdirnames(-1)
	_ = d.Close()
	if err != nil {
		return nil, false
	}
	for _, tid := range tids {
		// A thread that has exited has no file any more: it has no
		// children either.
		b, err := os.ReadFile(dir + tid + "/children")
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids, true
}

// helpersReap says that a live helper of a task (the fork supervisor) is a
// child subreaper: every process of the task's tree is its descendant.
const helpersReap = true

// haveChildren reports whether the kernel lists each thread's children
// in /proc (CONFIG_PROC_CHILDREN).
var haveChildren = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children")
	return err == nil
})
