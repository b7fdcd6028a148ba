package fork

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"btl/core"
	"btl/internal/regular"
)

// The records a supervisor started by an earlier btl keeps instead of
// core's record of runs: it goes on writing them until its task ends, so
// they are read, as the record they amount to, while no record exists.
//
//	<token>.exit  how the task ended: a core.Status, in JSON
//	<token>.runs  the current run of a task with a restart policy: legacyRuns
func legacyExitFile(dir, token string) string { return filepath.Join(dir, token+".exit") }
func legacyRunsFile(dir, token string) string { return filepath.Join(dir, token+".runs") }

// legacyRuns is what <token>.runs holds.
type legacyRuns struct {
	PID      int    `json:"pid"`
	Start    uint64 `json:"start"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit"`
	Policy   string `json:"policy"`
}

// maxLegacy bounds how much of a legacy record is read: a few dozen bytes
// of JSON each.
const maxLegacy = 64 << 10

// readLegacy returns the record of runs that the legacy records of the
// instance with the given token amount to; an error wrapping
// os.ErrNotExist when there are none.
func readLegacy(dir, token string) (core.Runs, error) {
	var r core.Runs
	var rr legacyRuns
	if b, err := regular.ReadFile(legacyRunsFile(dir, token), maxLegacy); err == nil && json.Unmarshal(b, &rr) == nil {
		r = core.Runs{Policy: rr.Policy, Runs: rr.Restarts + 1, PID: rr.PID, Start: rr.Start, LastExit: rr.LastExit}
	}
	b, err := regular.ReadFile(legacyExitFile(dir, token), maxLegacy)
	if errors.Is(err, os.ErrNotExist) && r.Runs > 0 {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	var st core.Status
	if json.Unmarshal(b, &st) != nil {
		st = core.Status{State: core.Gone}
	}
	end := core.Status{State: st.State, Code: st.Code, Signal: st.Signal}
	r.Runs, r.PID, r.Ended, r.Final, r.CrashLoop = st.Restarts+1, st.PID, &end, true, st.CrashLoop
	return r, nil
}

// removeLegacy removes the legacy records of the instance with the given
// token.
func removeLegacy(dir, token string) {
	_ = os.Remove(legacyExitFile(dir, token))
	_ = os.Remove(legacyRunsFile(dir, token))
}
