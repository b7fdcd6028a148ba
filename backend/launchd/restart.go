package launchd

import (
	"context"
	"encoding/json"
	"errors"
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

// LaunchctlEnv is set in the plist of a task with a restart policy when
// the backend drives a launchctl of its own (Backend.Launchctl, Env): the
// launcher asks the same one how the last run ended. It holds a
// launchctlRef in JSON, and the launcher removes it from the environment
// before it executes the task.
const LaunchctlEnv = "_BTL_LAUNCHD_LAUNCHCTL"

// launchctlRef names the launchctl a backend drives.
type launchctlRef struct {
	Path string   `json:"path"`
	Env  []string `json:"env,omitempty"`
}

// launchctlRef returns the launchctl b drives for LaunchctlEnv, "" for
// the default one.
func (b *Backend) launchctlRef() string {
	if b.Launchctl == "" && b.Env == nil {
		return ""
	}
	data, _ := json.Marshal(launchctlRef{Path: b.Launchctl, Env: b.Env})
	return string(data)
}

// restartFiles are the files in btl's run directory that keep the
// restarts of one start of a task (named after its token, like its
// launch report), besides core's record of its runs.
type restartFiles struct {
	keep string // exists while launchd is to keep an always task alive (PathState)
	stop string // btl is stopping the task: the launcher runs nothing more
	// The records an earlier btl's launcher kept instead of core's record
	// of runs (see readLegacy).
	legacyRuns      string // legacyRecord, written at each launch
	legacyCrashLoop string // the launcher gave up: legacyCrashLoop
}

func restartFilesOf(report string) restartFiles {
	base := strings.TrimSuffix(report, ".launchd")
	return restartFiles{keep: base + ".keep", stop: base + ".stop", legacyRuns: base + ".runs", legacyCrashLoop: base + ".crashloop"}
}

// remove removes the files, and the record of runs, of the start whose
// launcher reports to report.
func removeRestartFiles(report string) {
	f := restartFilesOf(report)
	dirs, token := recordOf(report)
	for _, p := range []string{core.RunsFile(dirs, token), f.keep, f.stop, f.legacyRuns, f.legacyCrashLoop} {
		_ = os.Remove(p)
	}
}

// legacyRecord is what an earlier btl's launcher kept in <token>.runs.
type legacyRecord struct {
	Runs     int       `json:"runs"`      // launches so far, the first included
	InRow    int       `json:"in_row"`    // restarts since a run that lasted core.RestartResetAfter
	Last     time.Time `json:"last"`      // the last launch
	LastExit string    `json:"last_exit"` // how the run before the last launch ended
}

// legacyCrashLoop is what an earlier btl's launcher kept in
// <token>.crashloop: how a task it gave up on ended.
type legacyCrashLoop struct {
	Status   core.Status `json:"status"`
	Restarts int         `json:"restarts"`
}

func readJSON(path string, v any) bool {
	b, err := regular.ReadFile(path, maxFile)
	return err == nil && json.Unmarshal(b, v) == nil
}

// readRuns reads the record of the runs of the start whose launcher
// reports to report (core.ReadRuns), or, for a task an earlier btl
// started, the record its legacy files amount to.
func readRuns(report string) (core.Runs, error) {
	dirs, token := recordOf(report)
	r, err := core.ReadRuns(dirs, token)
	if !errors.Is(err, os.ErrNotExist) {
		return r, err
	}
	f := restartFilesOf(report)
	var cl legacyCrashLoop
	if readJSON(f.legacyCrashLoop, &cl) {
		end := core.Status{State: cl.Status.State, Code: cl.Status.Code, Signal: cl.Status.Signal}
		return core.Runs{Runs: cl.Restarts + 1, PID: cl.Status.PID, Ended: &end, Final: true, CrashLoop: true}, nil
	}
	var old legacyRecord
	if readJSON(f.legacyRuns, &old) {
		r := core.Runs{Runs: old.Runs, InRow: old.InRow, Began: old.Last, LastExit: old.LastExit}
		if rep, err := readReport(report); err == nil {
			r.PID, r.Start = rep.PID, rep.Start
		}
		return r, nil
	}
	return r, err
}

// relaunch is the launcher's part of a restart policy, run before the
// task's program: it reports whether the program is to run. Not after btl
// began stopping the task, nor once core decides that the policy's
// restarts in a row are used up (core.RecordEnd): the record then says
// crash loop, and launchd is stopped from spawning the launcher again (its
// exit 0 is a success for {SuccessfulExit: false}; the keep file of always
// is removed). label is the agent's (see LabelEnv), ctl LaunchctlEnv's
// value.
func relaunch(report string, p core.RestartPolicy, label, ctl string) bool {
	f := restartFilesOf(report)
	if _, err := os.Stat(f.stop); err == nil {
		_ = os.Remove(f.keep)
		return false
	}
	r, err := readRuns(report)
	if err != nil {
		return true // the first launch
	}
	dirs, token := recordOf(report)
	if _, cerr := core.ReadRuns(dirs, token); errors.Is(cerr, os.ErrNotExist) {
		// Started by an earlier btl: its record is carried over once.
		if core.WriteRuns(dirs, token, r, true) == nil {
			_ = os.Remove(f.legacyRuns)
		}
	}
	prev := previousEnd(label, ctl)
	// launchd has restarted the task as its mode says (KeepAlive): core
	// decides only whether the restarts in a row are used up.
	decide := core.RestartPolicy{Mode: core.RestartAlways, Max: p.Max}
	if _, again, err := core.RecordEnd(dirs, token, decide, prev, time.Now(), false); err == nil && !again {
		_ = os.Remove(f.keep)
		return false
	}
	return true
}

// previousEnd asks launchd how the last run of the job with the given
// label ended: `launchctl print` keeps the last exit code while the job
// runs again. ctl names the launchctl to ask (LaunchctlEnv), "" for the
// default one.
func previousEnd(label, ctl string) core.Status {
	if !strings.HasPrefix(label, LabelPrefix) || !core.ValidHash(strings.TrimPrefix(label, LabelPrefix)) {
		return core.Status{State: core.Gone}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := &Backend{UID: os.Getuid()}
	var ref launchctlRef
	if ctl != "" && json.Unmarshal([]byte(ctl), &ref) == nil {
		b.Launchctl, b.Env = ref.Path, ref.Env
	}
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
// with a restart policy, from the record of its runs: its restarts and how
// its last run ended, a crash loop once the launcher gave up, and running
// while launchd is about to spawn it again (it reports the last run's end,
// or "spawn scheduled", until then).
func (b *Backend) withRestarts(t core.Task, st core.Status) core.Status {
	p, err := core.ParseRestart(t.Restart)
	if err != nil || !p.Enabled() || t.Token == "" {
		return st
	}
	report := reportPath(b.Dirs, t.Token)
	r, err := readRuns(report)
	if err != nil {
		return st
	}
	if own, final := r.Status(); final && !st.Alive() {
		return own
	}
	st.Restarts = r.Restarts()
	if st.Restarts > 0 {
		st.LastExit = r.LastExit
	}
	if _, err := os.Stat(restartFilesOf(report).stop); err != nil && (st.State == core.Starting || st.Ended() && p.Restarts(st)) {
		// Between two runs.
		if st.Ended() {
			st.LastExit = st.String()
		}
		st = core.Status{State: core.Running, PID: t.PID, Restarts: st.Restarts, LastExit: st.LastExit}
		if r.PID > 0 {
			st.PID = r.PID
		}
	} else if st.Ended() && st.Restarts > 0 {
		st.LastExit = st.String()
	}
	return st
}
