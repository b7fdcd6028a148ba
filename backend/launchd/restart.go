package launchd

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"time"

	"btl/core"
	"btl/internal/regular"
)

// RestartEnv is set in the plist of a task with a restart policy to the
// policy (core.RestartPolicy.String). launchd spawns the launcher again
// after each end the policy restarts after (KeepAlive); the launcher counts
// the runs and gives up once the policy's restarts in a row are used up.
const RestartEnv = "_BTL_LAUNCHD_RESTART"

// restartFiles are the files in btl's run directory that keep the
// restarts of one start of a task (named after its token, like its
// launch report).
type restartFiles struct {
	runs      string // restartRecord, written by the launcher at each launch
	keep      string // exists while launchd is to keep an always task alive (PathState)
	stop      string // btl is stopping the task: the launcher runs nothing more
	crashLoop string // the launcher gave up: the crashLoopRecord
}

func restartFilesOf(report string) restartFiles {
	base := strings.TrimSuffix(report, ".launchd")
	return restartFiles{runs: base + ".runs", keep: base + ".keep", stop: base + ".stop", crashLoop: base + ".crashloop"}
}

func (f restartFiles) remove() {
	for _, p := range []string{f.runs, f.keep, f.stop, f.crashLoop} {
		_ = os.Remove(p)
	}
}

// restartRecord counts a task's launches.
type restartRecord struct {
	Runs     int       `json:"runs"`      // launches so far, the first included
	InRow    int       `json:"in_row"`    // restarts since a run that lasted core.RestartResetAfter
	Last     time.Time `json:"last"`      // the last launch
	LastExit string    `json:"last_exit"` // how the run before the last launch ended
}

// crashLoopRecord is how a task the launcher gave up on ended.
type crashLoopRecord struct {
	Status   core.Status `json:"status"`
	Restarts int         `json:"restarts"`
}

func readJSON(path string, v any) bool {
	b, err := regular.ReadFile(path, maxFile)
	return err == nil && json.Unmarshal(b, v) == nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return regular.WriteFileAtomic(path, b, 0o600)
}

// relaunch is the launcher's part of a restart policy, run before the
// task's program: it reports whether the program is to run. Not after btl
// began stopping the task, nor once the policy's restarts in a row are
// used up: then it records the crash loop and stops launchd from spawning
// it again (the launcher's exit 0 is a success for {SuccessfulExit:
// false}; the keep file of always is removed).
// lastPID is the PID of the run before this launch, which a crash loop
// records as the task's; label is the agent's (see LabelEnv).
func relaunch(report, policy, label string, lastPID int) bool {
	p, err := core.ParseRestart(policy)
	if err != nil || !p.Enabled() {
		return true
	}
	f := restartFilesOf(report)
	if _, err := os.Stat(f.stop); err == nil {
		_ = os.Remove(f.keep)
		return false
	}
	now := time.Now()
	var r restartRecord
	if !readJSON(f.runs, &r) {
		_ = writeJSON(f.runs, restartRecord{Runs: 1, Last: now})
		return true
	}
	prev := previousEnd(label)
	if now.Sub(r.Last) >= core.RestartResetAfter {
		r.InRow = 0
	}
	if r.InRow >= p.Max {
		prev.PID = lastPID
		_ = writeJSON(f.crashLoop, crashLoopRecord{Status: prev, Restarts: r.Runs - 1})
		_ = os.Remove(f.keep)
		return false
	}
	r.InRow++
	r.Runs++
	r.Last = now
	r.LastExit = prev.String()
	_ = writeJSON(f.runs, r)
	return true
}

// previousEnd asks launchd how the last run of the job with the given
// label ended: `launchctl print` keeps the last exit code while the job
// runs again.
func previousEnd(label string) core.Status {
	if !strings.HasPrefix(label, LabelPrefix) || !core.ValidHash(strings.TrimPrefix(label, LabelPrefix)) {
		return core.Status{State: core.Gone}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := &Backend{UID: os.Getuid()}
	gui, user := b.domains()
	for _, dom := range []string{gui, user} {
		if r, err := b.launchctl(ctx, "print", dom+"/"+label); err == nil && r.code == 0 {
			if st, ok := lastEnd(topLevel(r.stdout)); ok {
				return st
			}
		}
	}
	return core.Status{State: core.Gone}
}

// withRestarts completes the status st that launchd reports of t, a task
// with a restart policy: its restarts and how its last run ended, a crash
// loop once the launcher gave up, and running while launchd is about to
// spawn it again (it reports the last run's end, or "spawn scheduled",
// until then).
func (b *Backend) withRestarts(t core.Task, st core.Status) core.Status {
	p, err := core.ParseRestart(t.Restart)
	if err != nil || !p.Enabled() || t.Token == "" {
		return st
	}
	f := restartFilesOf(reportPath(b.Dirs, t.Token))
	var cl crashLoopRecord
	if !st.Alive() && readJSON(f.crashLoop, &cl) {
		out := cl.Status
		out.Restarts, out.CrashLoop = cl.Restarts, true
		if cl.Restarts > 0 {
			out.LastExit = cl.Status.String()
		}
		return out
	}
	var r restartRecord
	if !readJSON(f.runs, &r) {
		return st
	}
	st.Restarts = r.Runs - 1
	if st.Restarts > 0 {
		st.LastExit = r.LastExit
	}
	if _, err := os.Stat(f.stop); err != nil && (st.State == core.Starting || st.Ended() && p.Restarts(st)) {
		// Between two runs.
		if st.Ended() {
			st.LastExit = st.String()
		}
		st = core.Status{State: core.Running, PID: t.PID, Restarts: st.Restarts, LastExit: st.LastExit}
		if rep, err := readReport(reportPath(b.Dirs, t.Token)); err == nil {
			st.PID = rep.PID
		}
	} else if st.Ended() && st.Restarts > 0 {
		st.LastExit = st.String()
	}
	return st
}
