// Package systemd runs btl tasks as transient systemd --user units: one
// unit, btl-<hash>.service, per task, started over D-Bus with
// StartTransientUnit, so that `systemctl --user` and `journalctl --user`
// show btl's tasks and systemd's cgroup tracking guarantees that stopping a
// task stops every process it spawned, including those that called setsid.
//
// # Logs
//
// A task's stdout and stderr go to the journal, tagged with the unit's
// SyslogIdentifier=btl-<hash> (journald takes it from the stream itself;
// the _SYSTEMD_USER_UNIT field it looks up in /proc is missing for
// processes that exit at once). A small mirror unit per task,
// btllog-<hash>.service, runs the btl binary re-executed (see MaybeMirror):
// `journalctl -f` wakes it when the task logs, and it copies the new
// entries into the task's log file, so the file is live while the task
// runs. The mirror and Backend.SyncLog share one routine: under a per-hash
// lock, read the cursor file, run `journalctl -o json --after-cursor`,
// append, save the new cursor. Every line therefore reaches the file once
// and in order, whoever copies it, across replacements and restarts of the
// mirror; a copy killed half-way is resumed where it stopped. Before a
// hash's first copy the cursor file holds the start time instead, so that
// the journal of another btl data directory that ran the same command is
// not copied, at no journalctl run. When btl stops a task, it tells the
// mirror to quit at once (SIGUSR1) and copies once itself after the stop;
// a mirror that systemd stops (`systemctl --user stop`, logout) copies
// once more on its way out. Where the
// user cannot read the journal (volatile storage without membership of
// systemd-journal, no journald), the task is started with
// StandardOutput=append:<log file> instead and marked LogDirect.
//
// # Exit status
//
// systemd forgets a transient unit as soon as it is inactive (CollectMode=
// inactive), so a task that exited with 0 would leave no trace. Each task
// unit therefore has an ExecStopPost= command that writes how the main
// process ended ($EXIT_CODE $EXIT_STATUS) to <run dir>/<token>.exit.
// Inspect reads the unit while systemd has it (running, or failed: a unit
// that exits non-zero stays loaded and visible in `systemctl --user
// --failed` until btl replaces, kills or cleans it) and that record
// afterwards, so `btl list` shows `exited N` and `killed (SIGTERM)` as with
// the fork backend. The record's path also tells which btl data directory
// started a unit: List re-adopts only the units of its own.
package systemd

import (
	"errors"
	"strings"

	"btl/core"
)

// Name is the backend's name in state.json and on the command line.
const Name = "systemd"

// ErrUnavailable reports that no systemd user manager can be reached: no
// user bus, no manager on it, or not a Linux system.
var ErrUnavailable = errors.New("systemd: no systemd user manager reachable")

// ErrNotUTF8 reports a command or directory that is not valid UTF-8, which
// D-Bus cannot carry: such a task needs the fork backend.
var ErrNotUTF8 = errors.New("systemd: command or directory is not valid UTF-8 (use --backend fork)")

// MirrorEnv is set in the environment of the re-executed btl binary to make
// it run as a task's log mirror (see MaybeMirror).
const MirrorEnv = "_BTL_SYSTEMD_MIRROR"

// UnitName is the name of the unit that runs the task with the given hash.
func UnitName(hash string) string { return "btl-" + hash + ".service" }

// MirrorUnitName is the name of the unit that mirrors the task's journal
// into its log file. It does not match `btl-*`, so that listing btl's units
// shows tasks only.
func MirrorUnitName(hash string) string { return "btllog-" + hash + ".service" }

// hashOfUnit returns the hash of a task unit name, and whether name is one.
func hashOfUnit(name string) (string, bool) {
	h, ok := strings.CutPrefix(name, "btl-")
	if !ok {
		return "", false
	}
	h, ok = strings.CutSuffix(h, ".service")
	return h, ok && core.ValidHash(h)
}
