package fork

import (
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

// findTasks lists the caller's live processes that lead their own session
// and carry btl's BTL_HASH and BTL_INSTANCE: the main processes of tasks
// that btl started in a session of their own. Other processes are never
// read beyond their stat line.
func findTasks() []Found {
	uid := os.Getuid()
	var out []Found
	for _, info := range proc.Processes(uid) {
		if info.Zombie || info.UID != uid || info.PGID != info.PID {
			continue
		}
		if sid, err := unix.Getsid(info.PID); err != nil || sid != info.PID {
			continue
		}
		token, ok := proc.EnvValue(info.PID, core.EnvInstance)
		if !ok {
			continue
		}
		hash, ok := proc.EnvValue(info.PID, core.EnvHash)
		if !ok || !core.ValidHash(hash) || !strings.HasPrefix(token, hash+"-") {
			continue
		}
		f := Found{Proc: proc.Proc{PID: info.PID, Start: info.Start}, Hash: hash, Token: token}
		f.Argv, f.Cwd, f.StartedAt = proc.Details(info.PID, info.Start)
		if p, err := proc.LookupProc(info.PPID); err == nil && !p.Zombie {
			f.Parent = proc.Proc{PID: p.PID, Start: p.Start}
		}
		out = append(out, f)
	}
	return out
}
