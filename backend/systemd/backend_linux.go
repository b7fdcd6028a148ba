package systemd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"golang.org/x/sys/unix"

	"btl/core"
)

// Backend runs tasks as transient units of the caller's systemd user
// manager. Use New to make one and Close when done.
type Backend struct {
	dirs core.Dirs
	conn *conn

	journalctl    string   // absolute path of journalctl
	journalArgs   []string // extra journalctl arguments; tests point it elsewhere
	journalSocket string   // journald's stdout socket, present while it runs
	exe           string   // program re-executed as the log mirror

	probed      bool  // whether readErr is known
	readableErr error // why the journal cannot be read, or nil
}

var (
	_ core.Backend   = (*Backend)(nil)
	_ core.LogSyncer = (*Backend)(nil)
	_ core.Releaser  = (*Backend)(nil)
)

// New connects to the caller's systemd user manager: at
// $DBUS_SESSION_BUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/bus, else the
// manager's private socket $XDG_RUNTIME_DIR/systemd/private. It never
// starts a bus. When no manager answers, the error wraps ErrUnavailable.
func New(dirs core.Dirs) (*Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		jc = "/usr/bin/journalctl"
	}
	return &Backend{dirs: dirs, conn: c, journalctl: jc, journalSocket: "/run/systemd/journal/stdout"}, nil
}

// Close closes the connection to the user manager.
func (b *Backend) Close() error {
	b.conn.Close()
	return nil
}

// Name returns "systemd".
func (b *Backend) Name() string { return Name }

// Start runs spec as the unit btl-<hash>.service, first stopping whatever
// instance that unit still runs (after copying its last lines to the log).
// It returns once systemd has executed the program (Type=exec), with the
// unit's main PID. Where the journal is readable, it also starts the
// task's log mirror; where not, the task's output is appended to its log
// file directly and the task is marked LogDirect.
func (b *Backend) Start(ctx context.Context, spec core.Spec) (core.Task, error) {
	if len(spec.Argv) == 0 {
		return core.Task{}, errors.New("systemd: no command given")
	}
	if err := checkUTF8(spec); err != nil {
		return core.Task{}, err
	}
	if _, err := core.LookPath(spec.Path, spec.Dir, spec.Env); err != nil {
		var ee *core.ExecError
		if errors.As(err, &ee) {
			return core.Task{}, &core.ExecError{Name: spec.Argv[0], Err: ee.Err}
		}
		return core.Task{}, err
	}
	if err := os.MkdirAll(b.dirs.Run, 0o700); err != nil {
		return core.Task{}, fmt.Errorf("systemd: %w", err)
	}
	logMax, err := core.LogMax(spec.Env)
	if err != nil {
		return core.Task{}, err
	}
	// The previous instance's last lines are copied below, under the lock.
	copyDue, err := b.stopUnits(ctx, spec.Hash, spec.LogFile, core.Grace, false)
	if err != nil {
		return core.Task{}, fmt.Errorf("stop previous instance: %w", err)
	}

	direct := b.journalReadable(ctx) != nil
	j := b.journalFor(spec.Hash, spec.LogFile, logMax)
	unit := UnitName(spec.Hash)
	exitFile := ""
	if spec.Token != "" {
		exitFile = b.exitFile(spec.Token)
		os.Remove(exitFile)
	}
	// Hold the copy lock from before the start until the start marker is
	// in the log, so that the marker precedes every line of the new run.
	// (With a direct log, systemd appends itself: a line the task prints
	// at once may precede the marker.)
	unlock, err := j.lock()
	if err != nil {
		return core.Task{}, err
	}
	defer func() { unlock() }()
	if !direct {
		if err := j.startAt(time.Now()); err != nil {
			return core.Task{}, err
		}
		if copyDue {
			j.syncLocked(ctx)
		}
	}
	addRef := !b.conn.private
	result, err := b.startTransient(ctx, unit, taskProps(spec, exitFile, direct, addRef))
	if err != nil {
		return core.Task{}, err
	}
	info, ierr := b.unitInfo(ctx, unit)
	if addRef {
		b.conn.unrefUnit(ctx, unit)
	}
	if ierr != nil {
		return core.Task{}, ierr
	}
	if result != "done" && !info.ranAndEnded() {
		b.conn.ResetFailedUnitContext(ctx, unit)
		if exitFile != "" {
			os.Remove(exitFile)
		}
		return core.Task{}, startError(spec, unit, result, info)
	}
	pid := info.MainPID
	if pid == 0 {
		pid = info.ExecMainPID
	}
	t := core.Task{
		PID:       pid,
		Unit:      unit,
		Backend:   Name,
		LogDirect: direct,
		StartedAt: time.Now().UTC(),
	}
	if p, err := core.LookupProc(pid); err == nil {
		t.ProcStart = p.Start
	}
	j.appendLocked([]byte(core.StartMarker(t.StartedAt, t.PID, spec.Command)))
	unlock()
	unlock = func() {}
	if !direct {
		j.PID, j.Start = t.PID, t.ProcStart
		if err := b.startMirror(ctx, spec.Hash, j); err != nil {
			b.stopUnits(ctx, spec.Hash, spec.LogFile, 0, true)
			return core.Task{}, err
		}
	}
	return t, nil
}

func checkUTF8(spec core.Spec) error {
	for _, s := range append([]string{spec.Path, spec.Dir, spec.Command}, spec.Argv...) {
		if !utf8.ValidString(s) {
			return ErrNotUTF8
		}
	}
	return nil
}

// startError explains a start job that did not succeed.
func startError(spec core.Spec, unit, result string, info unitInfo) error {
	if info.ExecMainCode == cldExited {
		switch info.ExecMainStatus {
		case exitExec:
			return &core.ExecError{Name: spec.Argv[0], Err: core.ErrNotExecutable}
		case exitChdir:
			return fmt.Errorf("systemd: %s: cannot change to directory %s", unit, spec.Dir)
		}
	}
	return fmt.Errorf("systemd: start %s: job %s (result %s, status %d)", unit, result, info.Result, info.ExecMainStatus)
}

// startTransient starts a transient unit and waits for the start job. A
// unit of that name systemd still holds (failed, or not yet collected) is
// reset and the start retried.
func (b *Backend) startTransient(ctx context.Context, unit string, props []sd.Property) (string, error) {
	for attempt := 0; ; attempt++ {
		ch := make(chan string, 1)
		_, err := b.conn.StartTransientUnitContext(ctx, unit, "fail", props, ch)
		if dbusErrorName(err) == "org.freedesktop.systemd1.UnitExists" && attempt < 20 {
			b.conn.ResetFailedUnitContext(ctx, unit)
			if attempt > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("systemd: start %s: %w", unit, err)
		}
		return waitJob(ctx, ch, unit)
	}
}

func waitJob(ctx context.Context, ch <-chan string, unit string) (string, error) {
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return "", fmt.Errorf("systemd: waiting for %s: %w", unit, ctx.Err())
	}
}

// startMirror starts the task's log mirror unit.
func (b *Backend) startMirror(ctx context.Context, hash string, j *journal) error {
	exe := b.exe
	exe, err := core.SelfExe(exe)
	if err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	cfg, err := json.Marshal(j)
	if err != nil {
		return err
	}
	unit := MirrorUnitName(hash)
	result, err := b.startTransient(ctx, unit, mirrorProps(hash, exe, string(cfg)))
	if err != nil {
		return err
	}
	if result != "done" {
		b.conn.ResetFailedUnitContext(ctx, unit)
		return fmt.Errorf("systemd: start log mirror %s: job %s", unit, result)
	}
	return nil
}

// stopUnits stops the task unit of hash, whatever instance it runs (SIGTERM
// to its whole cgroup, SIGKILL after grace), and its mirror, and clears
// systemd's failed state of both. The journal keeps every line the task
// printed, so one copy after the stop loses nothing: stopUnits makes it
// when copyNow is set, and otherwise reports whether the caller must. The
// mirror is told to quit without a copy of its own (quitSignal) first:
// stopping the task would stop it too (PartOf=), and it would copy on the
// way. A failed copy does not fail the stop: the lines stay in the
// journal, and the next copy takes them.
func (b *Backend) stopUnits(ctx context.Context, hash, logFile string, grace time.Duration, copyNow bool) (due bool, err error) {
	unit := UnitName(hash)
	info, err := b.unitInfo(ctx, unit)
	if err != nil {
		return false, err
	}
	due = info.Loaded && !info.Direct && b.journalReadable(ctx) == nil
	if due {
		b.conn.KillUnitWithTarget(ctx, MirrorUnitName(hash), sd.Main, int32(quitSignal))
	}
	if info.Loaded {
		if _, err := b.stopUnit(ctx, unit, grace); err != nil {
			return false, err
		}
	}
	mirrorKnown, err := b.stopUnit(ctx, MirrorUnitName(hash), 5*time.Second)
	if err != nil {
		return false, err
	}
	if info.Loaded {
		b.conn.ResetFailedUnitContext(ctx, unit)
	}
	if mirrorKnown {
		b.conn.ResetFailedUnitContext(ctx, MirrorUnitName(hash))
	}
	if due && copyNow {
		b.journalFor(hash, logFile, logMax()).sync(ctx)
		return false, nil
	}
	return due, nil
}

// stopUnit stops unit and waits for it: systemd sends SIGTERM to every
// process of the unit; after grace, btl has it send SIGKILL. A unit systemd
// does not know is not an error; known reports whether it knew the unit.
func (b *Backend) stopUnit(ctx context.Context, unit string, grace time.Duration) (known bool, err error) {
	ch := make(chan string, 1)
	_, err = b.conn.StopUnitContext(ctx, unit, "replace", ch)
	if dbusErrorName(err) == "org.freedesktop.systemd1.NoSuchUnit" {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("systemd: stop %s: %w", unit, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-ch:
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("systemd: stop %s: %w", unit, ctx.Err())
	case <-timer.C:
	}
	b.conn.KillUnitWithTarget(ctx, unit, sd.All, int32(unix.SIGKILL))
	kill := time.NewTimer(10 * time.Second)
	defer kill.Stop()
	select {
	case <-ch:
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("systemd: stop %s: %w", unit, ctx.Err())
	case <-kill.C:
		return true, fmt.Errorf("systemd: stop %s: still stopping 10s after SIGKILL", unit)
	}
}

// Stop stops t's unit: SIGTERM to every process in its cgroup, SIGKILL to
// what is left after grace. The journal is copied to the log before and
// after. A unit that runs another instance than t is left alone.
func (b *Backend) Stop(ctx context.Context, t core.Task, grace time.Duration) error {
	unit := unitOf(t)
	info, err := b.unitInfo(ctx, unit)
	if err != nil {
		return err
	}
	if !info.Loaded {
		// The task ended and systemd forgot it: stop its mirror, if any.
		_, err := b.stopUnits(ctx, t.Hash, logFileOf(b.dirs, t), grace, true)
		return err
	}
	if !info.owns(t) {
		return nil
	}
	if _, err := b.stopUnits(ctx, t.Hash, logFileOf(b.dirs, t), grace, true); err != nil {
		return err
	}
	after, err := b.unitInfo(ctx, unit)
	if err != nil {
		return err
	}
	if after.owns(t) && after.running() {
		return &core.SurvivorsError{PIDs: []int{after.MainPID}}
	}
	return nil
}

// Inspect reports t as running while its unit runs t's instance, and
// otherwise how its main process ended: from the unit while systemd keeps
// it, from the record the unit's ExecStopPost left once it is gone.
func (b *Backend) Inspect(ctx context.Context, t core.Task) (core.Status, error) {
	info, err := b.unitInfo(ctx, unitOf(t))
	if err != nil {
		return core.Status{}, err
	}
	owns := info.owns(t)
	if owns && info.running() {
		return core.Status{State: core.Running, PID: info.MainPID}, nil
	}
	if owns {
		if st, ok := info.exitStatus(); ok {
			return st, nil
		}
	}
	if t.Token != "" {
		if st, ok := readExit(b.exitFile(t.Token)); ok {
			return st, nil
		}
	}
	return core.Status{State: core.Gone}, nil
}

// List returns the running btl-<hash>.service units, read back from their
// properties: the command from Description, argv from ExecStart, the
// working directory from WorkingDirectory. A unit whose hash does not match
// its command and directory was not made by btl and is left out, and so is
// one started by btl with another data directory (its exit record, in
// ExecStopPost, points elsewhere).
func (b *Backend) List(ctx context.Context) ([]core.Task, error) {
	units, err := b.conn.ListUnitsByPatternsContext(ctx, nil, []string{"btl-*.service"})
	if err != nil {
		return nil, fmt.Errorf("systemd: list units: %w", err)
	}
	var out []core.Task
	for _, u := range units {
		hash, ok := hashOfUnit(u.Name)
		if !ok || u.ActiveState == "inactive" || u.ActiveState == "failed" {
			continue
		}
		info, err := b.unitInfo(ctx, u.Name)
		if err != nil || !info.running() || core.Hash(info.Dir, info.Description) != hash {
			continue
		}
		if filepath.Dir(info.ExitFile) != filepath.Clean(b.dirs.Run) {
			continue // started by btl with another data directory
		}
		t := core.Task{
			Hash:      hash,
			PID:       info.MainPID,
			Command:   info.Description,
			Cwd:       info.Dir,
			Argv:      info.Argv,
			LogFile:   b.dirs.LogFile(hash),
			Backend:   Name,
			Unit:      u.Name,
			Token:     info.Token,
			LogDirect: info.Direct,
			StartedAt: info.StartedAt,
		}
		if p, err := core.LookupProc(t.PID); err == nil {
			t.ProcStart = p.Start
		}
		out = append(out, t)
	}
	return out, nil
}

// SyncLog copies the journal entries of t's unit that its log file lacks.
// It does nothing for a task whose output goes to the file directly.
func (b *Backend) SyncLog(ctx context.Context, t core.Task) error {
	if t.LogDirect {
		return nil
	}
	return b.journalFor(t.Hash, logFileOf(b.dirs, t), logMax()).sync(ctx)
}

// unitOf is the unit of t. It is derived from the hash, never taken from
// state.json's unit field: an edited state must not lead btl to stop a
// unit that is not one of its own.
func unitOf(t core.Task) string { return UnitName(t.Hash) }

func logFileOf(dirs core.Dirs, t core.Task) string {
	if t.LogFile != "" {
		return t.LogFile
	}
	return dirs.LogFile(t.Hash)
}

// logMax is the log size limit for copies made by this process.
func logMax() int64 {
	n, err := core.LogMax(os.Environ())
	if err != nil {
		return core.DefaultLogMax
	}
	return n
}

func (b *Backend) exitFile(token string) string {
	return filepath.Join(b.dirs.Run, token+".exit")
}

// readExit reads the record a unit's ExecStopPost left: "$EXIT_CODE
// $EXIT_STATUS", such as "exited 3" or "killed TERM".
func readExit(path string) (core.Status, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return core.Status{}, false
	}
	return parseExit(string(b))
}

func parseExit(s string) (core.Status, bool) {
	code, status, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return core.Status{}, false
	}
	switch code {
	case "exited":
		n, err := strconv.Atoi(status)
		if err != nil {
			return core.Status{}, false
		}
		return core.Status{State: core.Exited, Code: n}, true
	case "killed", "dumped":
		if sig := unix.SignalNum("SIG" + status); sig != 0 {
			return core.Status{State: core.Signaled, Signal: int(sig)}, true
		}
		if n, err := strconv.Atoi(status); err == nil {
			return core.Status{State: core.Signaled, Signal: n}, true
		}
		return core.Status{State: core.Signaled}, true
	}
	return core.Status{}, false
}

// Release makes systemd forget t once btl does: it clears the failed state
// that keeps a unit that exited non-zero loaded, and removes t's exit
// record. A unit that runs another instance is left alone.
func (b *Backend) Release(ctx context.Context, t core.Task) error {
	if t.Token != "" {
		os.Remove(b.exitFile(t.Token))
	}
	info, err := b.unitInfo(ctx, unitOf(t))
	// A unit whose main process has ended may still run its stop
	// commands; it fails only once they are done, and only then can its
	// failure be reset.
	for deadline := time.Now().Add(2 * time.Second); err == nil && info.owns(t) && info.ActiveState == "deactivating" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		info, err = b.unitInfo(ctx, unitOf(t))
	}
	if err != nil || !info.owns(t) || info.running() {
		return err
	}
	if err := b.conn.ResetFailedUnitContext(ctx, unitOf(t)); err != nil && dbusErrorName(err) != "org.freedesktop.systemd1.NoSuchUnit" {
		return fmt.Errorf("systemd: reset %s: %w", unitOf(t), err)
	}
	return nil
}
