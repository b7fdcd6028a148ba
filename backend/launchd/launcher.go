package launchd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/logpump"
	"btl/internal/proc"
	"btl/internal/reexec"
	"btl/internal/regular"
)

// LaunchEnv is set in a task's plist to the file where the launcher reports
// the task's PID (see launch). The launcher removes it from the
// environment before it executes the task.
const LaunchEnv = "_BTL_LAUNCHD_REPORT"

// LogEnv is set in a task's plist to the task's log file. Unless the log has
// no size limit, the launcher routes the task's output through a log pump
// (see internal/logpump) that keeps the file under BTL_LOG_MAX.
const LogEnv = "_BTL_LAUNCHD_LOG"

// CommandEnv is set in a task's plist to the task's command line as btl
// shows it, for the start marker the launcher writes to the log.
const CommandEnv = "_BTL_LAUNCHD_COMMAND"

// LabelEnv is set in a task's plist to the agent's label, which the
// launcher needs to ask launchd about the task's last run (XPC_SERVICE_NAME
// is launchd's, and is not relied on). The launcher removes it from the
// environment before it executes the task.
const LabelEnv = "_BTL_LAUNCHD_LABEL"

// launchReport is what the launcher writes before it executes the task.
type launchReport struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // see core.Proc
}

// The launcher is what launchd starts (LaunchEnv set; see internal/reexec).
// launchd does not tell the PID of a task that ended before anyone asked,
// and a task may end within a millisecond. So the plist's Program is btl
// itself: it writes its PID and start time to the report file, then
// executes ProgramArguments in the same process, which keeps the PID, the
// session and the process group launchd set up.
func init() {
	reexec.Register(LaunchEnv, launch)
}

// launch reports and executes os.Args; it returns only on failure, with
// the shell's exit code (127 command not found, 126 not executable).
func launch(report string) int {
	os.Unsetenv(LaunchEnv)
	logFile, pump := os.LookupEnv(LogEnv)
	os.Unsetenv(LogEnv)
	command, ok := os.LookupEnv(CommandEnv)
	if !ok {
		command = core.CommandLine(os.Args)
	}
	os.Unsetenv(CommandEnv)
	label := os.Getenv(LabelEnv)
	os.Unsetenv(LabelEnv)
	ctl := os.Getenv(LaunchctlEnv)
	os.Unsetenv(LaunchctlEnv)
	if len(os.Args) == 0 || !filepath.IsAbs(os.Args[0]) {
		fmt.Fprintf(os.Stderr, "btl: launchd launcher: no absolute program in %q\n", os.Args)
		return 126
	}
	rep := launchReport{PID: os.Getpid()}
	if info, err := proc.LookupProc(rep.PID); err == nil {
		rep.Start = info.Start
	}
	data, err := json.Marshal(rep)
	if err == nil {
		err = regular.WriteFileAtomic(report, data, 0o600)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "btl: launchd launcher: %v\n", err)
		return 126
	}
	var policy core.RestartPolicy
	if s, ok := os.LookupEnv(RestartEnv); ok {
		os.Unsetenv(RestartEnv)
		policy, _ = core.ParseRestart(s)
		if policy.Enabled() && !relaunch(report, policy, label, ctl) {
			return 0
		}
	}
	var pumpProc *core.Proc
	if max, err := logfile.LogMax(os.Environ()); pump && err == nil && max > 0 {
		pid, err := pipeOutput(logFile, max)
		if err != nil {
			fmt.Fprintf(os.Stderr, "btl: launchd launcher: %v; the log is not size-limited\n", err)
		} else if info, err := proc.LookupProc(pid); err == nil {
			pumpProc = &core.Proc{PID: pid, Start: info.Start}
		}
	}
	dirs, token := recordOf(report)
	// Should the record fail, the task runs all the same: its status is
	// launchd's.
	if _, err := core.RecordStart(dirs, token, policy, os.Stdout, core.Proc{PID: rep.PID, Start: rep.Start}, time.Now(), command); err == nil && pumpProc != nil {
		_ = core.RecordPump(dirs, token, *pumpProc)
	}
	err = syscall.Exec(os.Args[0], os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "btl: %s: %v\n", os.Args[0], err)
	if errors.Is(err, syscall.ENOENT) {
		return 127
	}
	return 126
}

// pipeOutput points stdout and stderr at a new log pump for logFile and
// returns the pump's PID.
func pipeOutput(logFile string, max int64) (int, error) {
	w, pid, err := logpump.Start("", logFile, max)
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Close() }()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup2(int(w.Fd()), fd); err != nil {
			return 0, fmt.Errorf("redirect output: %w", err)
		}
	}
	return pid, nil
}

// reportPath is the launcher's report file for one start of a task.
func reportPath(dirs core.Dirs, token string) string {
	return filepath.Join(dirs.Run, token+".launchd")
}

// recordOf returns the directories and the token of the task whose
// launcher reports to report: the record of its runs (core.Runs) is kept
// beside the report.
func recordOf(report string) (core.Dirs, string) {
	return core.Dirs{Run: filepath.Dir(report)}, strings.TrimSuffix(filepath.Base(report), ".launchd")
}

// readReport reads the launcher's report; an error means there is none yet.
func readReport(path string) (launchReport, error) {
	var rep launchReport
	data, err := regular.ReadFile(path, maxFile)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(data, &rep); err != nil || rep.PID <= 0 {
		return rep, fmt.Errorf("launchd: bad launch report %s", path)
	}
	return rep, nil
}
