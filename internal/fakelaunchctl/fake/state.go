//go:build linux

package fake

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Job states as printed by launchctl print.
const (
	stateRunning    = "running"
	stateNotRunning = "not running"
	stateSpawning   = "spawn scheduled"
	// stateSpawningSlow is the phase after "spawn scheduled" in which
	// launchd (xpcproxy) sets the job up before its program runs.
	stateSpawningSlow = "spawning"
	// Lingering states: a job booted out stays visible in one of them
	// for a while (see lingerMin/lingerMax).
	stateSIGTERMed = "SIGTERMed"
	stateExited    = "exited"
)

// Bounds of a booted-out label's lingering.
const (
	lingerMin = 50 * time.Millisecond
	lingerMax = 500 * time.Millisecond
)

// job is one loaded service, as persisted in the domain's JSON file.
type job struct {
	Label    string `json:"label"`
	Instance string `json:"instance"` // unique per bootstrap, guards stale helpers
	Plist    string `json:"plist"`
	// Program is what the plist names (Program or ProgramArguments[0]);
	// ProgramPath is its resolution, empty when it could not be resolved.
	Program             string            `json:"program"`
	ProgramPath         string            `json:"program_path,omitempty"`
	Arguments           []string          `json:"arguments"`
	WorkingDirectory    string            `json:"working_directory,omitempty"`
	StdoutPath          string            `json:"stdout_path,omitempty"`
	StderrPath          string            `json:"stderr_path,omitempty"`
	Environment         map[string]string `json:"environment"` // exactly what the program gets
	ExitTimeout         int               `json:"exit_timeout"`
	AbandonProcessGroup bool              `json:"abandon_process_group"`
	RunAtLoad           bool              `json:"run_at_load"`
	ProcessType         string            `json:"process_type,omitempty"`
	SessionTypes        []string          `json:"limit_load_to_session_type,omitempty"`

	State      string `json:"state"`
	PID        int    `json:"pid,omitempty"`
	MonitorPID int    `json:"monitor_pid,omitempty"`
	Runs       int    `json:"runs"`
	Exited     bool   `json:"exited"`      // false: "(never exited)"
	WaitStatus int    `json:"wait_status"` // raw wait status of the last run
	// ExitReason, when set, is all print says of how the last run ended
	// ("last exit reason = ...", no code).
	ExitReason string `json:"exit_reason,omitempty"`
	// LingerUntil, when set, marks a job booted out but still known to
	// launchd until then (UnixNano).
	LingerUntil int64 `json:"linger_until,omitempty"`
	// SoftFiles and HardFiles are the plist's RLIMIT_NOFILE (0: unset);
	// Umask is its umask (-1: unset).
	SoftFiles uint64 `json:"soft_files,omitempty"`
	HardFiles uint64 `json:"hard_files,omitempty"`
	Umask     int    `json:"umask"`
	// KeepAlive as the plist gives it: true, or the conditions of its
	// dictionary (SuccessfulExit, PathState); Throttle is ThrottleInterval
	// in seconds; LastSpawn when the program last ran (UnixNano).
	KeepAlive      bool            `json:"keep_alive,omitempty"`
	SuccessfulExit *bool           `json:"successful_exit,omitempty"`
	PathState      map[string]bool `json:"path_state,omitempty"`
	Throttle       int             `json:"throttle"`
	LastSpawn      int64           `json:"last_spawn,omitempty"`
	// SpawnAt is when, on the fake's clock, the program first runs: fixed
	// by bootstrap, before it returns, so that a test moving the clock
	// right after cannot move the spawn with it.
	SpawnAt int64 `json:"spawn_at,omitempty"`
}

// lingering reports whether the job was booted out and is only lingering.
func (j *job) lingering() bool { return j.LingerUntil != 0 }

// exitDesc returns the list Status column: exit code, minus the signal, or 0.
func (j *job) exitDesc() int {
	if !j.Exited {
		return 0
	}
	ws := syscall.WaitStatus(j.WaitStatus)
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

// domainState is the content of one domain's JSON file.
type domainState struct {
	Jobs map[string]*job `json:"jobs"`
	// BusyUntil is, per label, until when (UnixNano on the fake's clock)
	// bootstrap of it still fails with 5 after its bootout.
	BusyUntil map[string]int64 `json:"busy_until,omitempty"`
}

// store is the state directory.
type store struct {
	dir string
	clk clock
}

// update runs fn on domain t's state under an exclusive flock and saves the
// state afterwards if fn returns true. fn must not block.
func (s store) update(t target, fn func(st *domainState) bool) error {
	base := filepath.Join(s.dir, t.kind+"-"+strconv.Itoa(t.id))
	lf, err := os.OpenFile(base+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = lf.Close() }() // releases the lock
	for {
		err = unix.Flock(int(lf.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return err
	}
	st := &domainState{}
	data, err := os.ReadFile(base + ".json")
	switch {
	case err == nil:
		if err := json.Unmarshal(data, st); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if st.Jobs == nil {
		st.Jobs = map[string]*job{}
	}
	if st.BusyUntil == nil {
		st.BusyUntil = map[string]int64{}
	}
	purged := false
	now := s.clk.now().UnixNano()
	for label, j := range st.Jobs {
		if j.lingering() && now >= j.LingerUntil {
			delete(st.Jobs, label)
			purged = true
		}
	}
	for label, until := range st.BusyUntil {
		if now >= until {
			delete(st.BusyUntil, label)
			purged = true
		}
	}
	if !fn(st) && !purged {
		return nil
	}
	data, err = json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := base + ".json.tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, base+".json")
}

// get returns a copy of the job label in domain t, or nil.
func (s store) get(t target, label string) *job {
	var out *job
	_ = s.update(t, func(st *domainState) bool {
		if j := st.Jobs[label]; j != nil {
			cp := *j
			out = &cp
		}
		return false
	})
	return out
}

// modify applies fn to the job if it is still the given instance, and saves.
// It reports whether the job was found.
func (s store) modify(t target, label, instance string, fn func(j *job)) bool {
	found := false
	_ = s.update(t, func(st *domainState) bool {
		j := st.Jobs[label]
		if j == nil || j.Instance != instance {
			return false
		}
		found = true
		fn(j)
		return true
	})
	return found
}
