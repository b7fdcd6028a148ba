// Package systemd runs btl tasks as transient systemd --user units: one
// unit, btl-<hash>-<data directory key>.service, per task, started over
// D-Bus (the manager's private socket where it can) with
// StartTransientUnit, so that `systemctl --user` and `journalctl --user`
// show btl's tasks and systemd's cgroup tracking guarantees that stopping a
// task stops every process it spawned, including those that called setsid.
//
// # Logs
//
// A task's stdout and stderr go to the journal, tagged with the unit's
// SyslogIdentifier (its name without .service; journald takes it from the
// stream itself, where the _SYSTEMD_USER_UNIT field it looks up in /proc is
// missing for processes that exit at once). One log agent per data
// directory, btl-logs-<key>.service, runs the btl binary re-executed (see
// runAgent): a single `journalctl -f` over the user's entries tells it
// which tasks logged, and it copies each one's new entries into its log
// file, so the files are live while the tasks run. It only reacts (to
// journal entries and to its units' signals) and exits by itself once none
// of its tasks may still print; btl starts it with each systemd task when
// it is not running, and any btl command that finds a running task starts
// it again. The agent and Backend.SyncLog share one routine: under a
// per-hash lock, read the task's cursor file, run `journalctl -o json
// --after-cursor`, append, save the new cursor. Every line therefore
// reaches the file once and in order, whoever copies it, across
// replacements and restarts of the agent; a copy killed half-way is resumed
// where it stopped. Where the user cannot read the journal (volatile
// storage without membership of systemd-journal, no journald), the task's
// output goes instead to a log pump (internal/logpump, the btl binary
// re-executed outside the unit), passed as StandardOutputFileDescriptor,
// which writes it to the log file under its cap; the task is marked
// LogDirect.
//
// # Exit status
//
// Task units have RemainAfterExit=yes: a program that ends by itself, or
// is killed by a signal from outside, leaves its unit loaded (active and
// exited, or failed) with ExecMainCode and ExecMainStatus, which Inspect
// reads. A unit that is stopped (`systemctl --user stop`, logout) is
// forgotten by systemd at once; for that case the log agent writes how the
// main process ended, from the values the unit's last PropertiesChanged
// signal carries, to <run dir>/<hash>.exit (one file per task, replaced by
// each instance). No process runs at a task's exit or stop, and nothing of
// btl's holds a reference on a unit. btl releases a kept unit when it
// replaces, kills or cleans the task.
package systemd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"

	"btl/core"
)

// Name is the backend's name in state.json and on the command line.
const Name = "systemd"

// ErrUnavailable reports that no systemd user manager can be reached: no
// user bus, no manager on it, or not a Linux system.
var ErrUnavailable = errors.New("systemd: no systemd user manager reachable")

// ErrNotUTF8 is wrapped by the error of a start whose command or
// directory is not valid UTF-8, which D-Bus cannot carry (see
// core.CheckNativeStart).
var ErrNotUTF8 = core.ErrNotText

// AgentEnv is set in the environment of the re-executed btl binary to make
// it run as a data directory's log agent (see runAgent).
const AgentEnv = "_BTL_SYSTEMD_AGENT"

// UnitName is the name of the unit that runs the task with the given hash
// for the data directory whose run directory is run:
// btl-<hash>-<8 hex of run>.service. The data directory's key keeps two
// data directories (XDG_DATA_HOME, HOME) that run the same command in the
// same directory from ever touching each other's units.
func UnitName(run, hash string) string { return "btl-" + hash + "-" + dirKey(run) + ".service" }

// AgentUnitName is the name of the log agent unit of the data directory
// whose run directory is run: btl-logs-<8 hex of its path>.service, one
// per data directory (a user normally has one). It is no task unit name
// (no 16-hex hash).
func AgentUnitName(run string) string { return "btl-logs-" + dirKey(run) + ".service" }

// dirKey is the 8 hex digits that name a data directory in unit names.
func dirKey(run string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(run)))
	return hex.EncodeToString(sum[:4])
}
