package fork

import (
	"bytes"
	"os"
	"strings"
	"time"

	"btl/core"
	"btl/internal/proc"

	"golang.org/x/sys/unix"
)

// Found is the main process of a task, found by its environment.
type Found struct {
	proc.Proc
	Hash, Token string
	Argv        []string  // from the process, when the system tells
	Cwd         string    // likewise
	StartedAt   time.Time // when the process started
	Parent      proc.Proc // its parent: the fork backend's supervisor
}

// findTasks lists the caller's live processes that lead their own session,
// carry btl's BTL_HASH and BTL_INSTANCE, and whose parent is a live
// supervisor started for the data directory data: the main processes of
// tasks that this btl started. The process table is read once; a process
// is read beyond its stat line only while it may be such a task: a
// process or parent among known (tasks btl already records, and their
// supervisors) is skipped, environments are read once, and the command
// line and directory only of the processes returned.
func findTasks(data string, known []proc.Proc, snap *proc.Snapshot) []Found {
	uid := os.Getuid()
	isKnown := make(map[proc.Proc]bool, len(known))
	for _, p := range known {
		isKnown[p] = true
	}
	// The stat lines sort out all but the few candidates; the UIDs of
	// these are read then (see proc.Stats). A command's snapshot, when it
	// has one, has them all already.
	var procs []proc.ProcInfo
	environ := proc.Environ
	if snap != nil {
		procs, environ = snap.Own(), snap.Environ
	} else {
		procs = proc.Stats(uid)
	}
	byPID := make(map[int]proc.ProcInfo, len(procs))
	for _, info := range procs {
		byPID[info.PID] = info
	}
	own := func(info proc.ProcInfo) bool {
		if info.UID >= 0 {
			return info.UID == uid
		}
		p, err := proc.LookupProc(info.PID)
		return err == nil && !p.Zombie && p.UID == uid && p.Start == info.Start
	}
	var out []Found
	for _, info := range procs {
		if info.Zombie || info.PGID != info.PID || isKnown[proc.Proc{PID: info.PID, Start: info.Start}] {
			continue
		}
		parent, ok := byPID[info.PPID]
		// A child starts no earlier than its parent: a parent with a
		// later start is a PID reused since.
		if !ok || parent.Zombie || parent.Start > info.Start {
			continue
		}
		pp := proc.Proc{PID: parent.PID, Start: parent.Start}
		if isKnown[pp] || !own(info) || !own(parent) {
			continue
		}
		if sid, err := unix.Getsid(info.PID); err != nil || sid != info.PID {
			continue
		}
		pvals := envValues(environ(parent.PID), SupervisorEnv, dataEnv)
		if pvals[0] == nil || *pvals[0] != "1" || pvals[1] == nil || *pvals[1] != data {
			continue
		}
		vals := envValues(environ(info.PID), core.EnvInstance, core.EnvHash)
		token, hash := vals[0], vals[1]
		if token == nil || hash == nil || !core.ValidHash(*hash) || !strings.HasPrefix(*token, *hash+"-") {
			continue
		}
		f := Found{Proc: proc.Proc{PID: info.PID, Start: info.Start}, Hash: *hash, Token: *token, Parent: pp}
		f.Argv, f.Cwd, f.StartedAt = proc.Details(info.PID, info.Start)
		out = append(out, f)
	}
	return out
}

// envValues returns the value of each of names in env (nil where absent).
func envValues(env [][]byte, names ...string) []*string {
	out := make([]*string, len(names))
	for _, e := range env {
		for i, n := range names {
			if v, ok := bytes.CutPrefix(e, []byte(n+"=")); ok && out[i] == nil {
				s := string(v)
				out[i] = &s
			}
		}
	}
	return out
}
