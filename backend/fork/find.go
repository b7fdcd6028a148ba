package fork

import (
	"bytes"
	"encoding/base64"
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
func findTasks(data string, known []proc.Proc) []Found {
	uid := os.Getuid()
	isKnown := make(map[proc.Proc]bool, len(known))
	for _, p := range known {
		isKnown[p] = true
	}
	// The stat lines sort out all but the few candidates; the UIDs of
	// these are read then (see proc.Stats).
	procs := proc.Stats(uid)
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
		pvals := envValues(proc.Environ(parent.PID), SupervisorEnv, dataEnv, argvEnv, cwdEnv)
		if pvals[0] == nil || *pvals[0] != "1" || pvals[1] == nil || *pvals[1] != data {
			continue
		}
		vals := envValues(proc.Environ(info.PID), core.EnvInstance, core.EnvHash)
		token, hash := vals[0], vals[1]
		if token == nil || hash == nil || !core.ValidHash(*hash) || !strings.HasPrefix(*token, *hash+"-") {
			continue
		}
		f := Found{Proc: proc.Proc{PID: info.PID, Start: info.Start}, Hash: *hash, Token: *token, Parent: pp}
		f.Argv, f.Cwd, f.StartedAt = proc.Details(info.PID, info.Start)
		// The command line and directory btl started, rather than what
		// the process runs now (env PORT=1 node x: node x).
		if argv, cwd, ok := recorded(pvals[2], pvals[3]); ok {
			f.Argv, f.Cwd = argv, cwd
		}
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

// The supervisor's environment keeps the task's argv and directory as
// btl started them (each base64, argv's arguments joined by commas), so
// that a task found again after state.json was lost shows its command
// line. A command line too long for an environment variable is left out.
const (
	argvEnv = "_BTL_FORK_ARGV"
	cwdEnv  = "_BTL_FORK_CWD"
	// maxRecorded keeps the variables well under Linux's limit of 128 KiB
	// for one environment string.
	maxRecorded = 32 << 10
)

// recordedEnv returns the supervisor's variables that record spec's argv
// and directory, none when they would be too long.
func recordedEnv(spec core.Spec) []string {
	enc := make([]string, len(spec.Argv))
	for i, a := range spec.Argv {
		enc[i] = base64.StdEncoding.EncodeToString([]byte(a))
	}
	argv := strings.Join(enc, ",")
	cwd := base64.StdEncoding.EncodeToString([]byte(spec.Dir))
	if len(argv)+len(cwd) > maxRecorded {
		return nil
	}
	return []string{argvEnv + "=" + argv, cwdEnv + "=" + cwd}
}

// recorded decodes what recordedEnv recorded.
func recorded(argv, cwd *string) ([]string, string, bool) {
	if argv == nil || cwd == nil || *argv == "" {
		return nil, "", false
	}
	var out []string
	for _, a := range strings.Split(*argv, ",") {
		b, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			return nil, "", false
		}
		out = append(out, string(b))
	}
	dir, err := base64.StdEncoding.DecodeString(*cwd)
	if err != nil {
		return nil, "", false
	}
	return out, string(dir), true
}
