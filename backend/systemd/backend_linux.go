package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/logpump"
	"btl/internal/proc"
)

// Backend runs tasks as transient units of the caller's systemd user
// manager. Use New to make one and Close when done.
type Backend struct {
	dirs core.Dirs
	conn *conn

	journalctl    string   // absolute path of journalctl
	journalArgs   []string // extra journalctl arguments; tests point it elsewhere
	journalSocket string   // journald's stdout socket, present while it runs
	exe           string   // program re-executed as the log agent

	probed      bool  // whether readErr is known
	readableErr error // why the journal cannot be read, or nil
	agentSeen   bool  // the log agent was checked by this Backend

	snap      *snapshot       // the last read of every task unit, for list; nil after a change
	read      *lastRead       // the last unit read alone; nil after a change
	unitReads int             // units read one by one (unitInfo), for tests
	stopped   map[string]bool // hashes whose unit this Backend stopped: a start copies their last lines first
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
	return &Backend{dirs: dirs, conn: c, journalctl: jc, journalSocket: "/run/systemd/journal/stdout", stopped: map[string]bool{}}, nil
}

// Close closes the connection to the user manager.
func (b *Backend) Close() error {
	b.conn.Close()
	return nil
}

// connected makes sure b's connection to the user manager is open: the
// manager closes the connections to its private socket when it is
// re-executed (daemon-reexec, an upgrade), and a long-lived btl (logs -f,
// a wait) goes on with a new one. It costs no round trip while the
// connection is open.
func (b *Backend) connected(ctx context.Context) error {
	if b.conn.raw.Connected() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	b.conn.Close()
	b.conn, b.snap = c, nil
	return nil
}

// Name returns "systemd".
func (b *Backend) Name() string { return Name }

// Start runs spec as the unit btl-<hash>-<data directory key>.service. It
// returns once systemd has executed the program (Type=exec), with the
// unit's main PID. Manager.Run has stopped the previous instance; a unit of
// that name systemd still holds (state lost, or a stale failed unit) is
// stopped here. Where the journal is readable, the task logs to it and the
// data directory's log agent copies its lines to the log file; where not,
// the task's output goes to a log pump (internal/logpump), which writes it
// to the log file under the same cap, and the task is marked LogDirect.
// Either way the agent is running when Start returns: it records how a
// task stopped from outside ended.
func (b *Backend) Start(ctx context.Context, spec core.Spec) (core.Started, error) {
	b.snap, b.read = nil, nil
	if err := b.connected(ctx); err != nil {
		return core.Started{}, err
	}
	if err := core.CheckNativeStart(Name, spec); err != nil {
		return core.Started{}, err
	}
	if err := os.MkdirAll(b.dirs.Run, 0o700); err != nil {
		return core.Started{}, fmt.Errorf("systemd: %w", err)
	}
	logMax, err := logfile.LogMax(spec.Env)
	if err != nil {
		return core.Started{}, err
	}

	// From here on a signal to btl (SIGINT, SIGTERM) does not cut the
	// start short: it completes, or is rolled back, and the caller records
	// it; a bound keeps a manager that stopped answering from hanging it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()

	direct := b.journalReadable(ctx) != nil
	var out, header *os.File
	if direct {
		// The journal cannot be read: the output goes through a log pump,
		// which keeps the log under its cap and writes the start marker
		// first. It outlives btl, and ends with the task's last writer.
		out, header, err = logpump.StartHeaded(b.exe, spec.LogFile, logMax)
		if err != nil {
			return core.Started{}, fmt.Errorf("systemd: %w", err)
		}
		defer func() { _ = out.Close() }()
		defer func() { _ = header.Close() }()
	}
	unit := UnitName(b.dirs.Run, spec.Hash)
	j := b.journalFor(unit, spec.Hash, spec.LogFile, logMax)
	// The cursor file tells every copier where this task's entries begin
	// and the task's log size limit.
	if err := j.startAt(time.Now()); err != nil {
		return core.Started{}, err
	}
	// The log agent runs before the task does, and cannot decide to exit
	// until the task runs (it would see it): a btl killed at any point of
	// the start leaves no task whose output does not reach its log.
	agentUnlock, err := b.lockAgent()
	if err != nil {
		return core.Started{}, err
	}
	defer func() { agentUnlock() }()
	if err := b.ensureAgentLocked(ctx, logMax); err != nil {
		return core.Started{}, err
	}
	b.agentSeen = true
	// Hold the copy lock from before the start until the start marker is
	// in the log, so that the marker precedes every line of the new run.
	unlock, err := j.lock()
	if err != nil {
		return core.Started{}, err
	}
	defer func() { unlock() }()
	// The last instance's record of runs must not be read as this one's.
	if err := os.Remove(core.RunsFile(b.dirs, spec.Hash)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return core.Started{}, fmt.Errorf("systemd: %w", err)
	}
	removeLegacy(b.dirs.Run, spec.Hash)
	copyOld := func() {
		if !direct {
			_ = j.syncLocked(ctx)
		}
	}
	if b.stopped[spec.Hash] {
		// The instance this start replaces: its last lines go before the
		// new start marker.
		copyOld()
	}
	result, err := b.startTask(ctx, unit, taskProps(spec, unit, out), copyOld)
	if err != nil {
		return core.Started{}, err
	}
	pid := 0
	if result == "done" {
		// The usual case: one property, not the whole unit.
		pid = b.mainPID(ctx, unit)
	}
	if pid == 0 {
		info, err := b.unitInfo(ctx, unit)
		if err != nil {
			// The unit may run: leave nothing running that is not tracked.
			_, _, _ = b.stopUnit(ctx, unit, 0)
			return core.Started{}, err
		}
		if result != "done" && !info.ranAndEnded() {
			_, _, _ = b.stopUnit(ctx, unit, 0)
			_ = b.conn.ResetFailedUnitContext(ctx, unit)
			return core.Started{}, startError(spec, unit, result, info)
		}
		pid = info.MainPID
		if pid == 0 {
			pid = info.ExecMainPID
		}
	}
	agentUnlock()
	agentUnlock = func() {}
	t := core.Started{
		PID:       pid,
		Unit:      unit,
		LogDirect: direct,
		StartedAt: time.Now().UTC(),
	}
	if p, err := proc.LookupProc(pid); err == nil {
		t.ProcStart = p.Start
	}
	if direct {
		_, _ = header.WriteString(core.StartMarker(t.StartedAt, t.PID, spec.Command))
		_ = header.Close()
	} else {
		_ = j.appendLocked([]byte(core.StartMarker(t.StartedAt, t.PID, spec.Command)))
	}
	// The first run is marked: the log agent marks the runs systemd
	// starts again (--restart).
	_ = j.markRun(t.PID)
	return t, nil
}

// mainPID reads the main PID of a running unit: one property, 0 when it
// cannot be read or the program has already ended.
func (b *Backend) mainPID(ctx context.Context, unit string) int {
	p, err := b.conn.GetUnitTypePropertyContext(ctx, unit, "Service", "MainPID")
	if err != nil {
		return 0
	}
	return asInt(p.Value.Value())
}

// startTimeout bounds a start once it is under way.
const startTimeout = time.Minute

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

// startTask starts a task's transient unit and waits for the start job. A
// unit of that name systemd still holds (the state lost it, or it ended
// and was kept for its exit status) is stopped first, then stopped is
// called (to copy its last lines), and the start retried. Nothing of
// btl's holds a reference on a task unit, so a stopped unit is unloaded
// at once; should something else hold one, the start waits for systemd
// to unload it (its UnitRemoved signal), up to unloadTimeout.
func (b *Backend) startTask(ctx context.Context, unit string, props []sd.Property, stopped func()) (string, error) {
	deadline := time.Now().Add(unloadTimeout)
	for {
		ch := make(chan string, 1)
		_, err := b.conn.StartTransientUnitContext(ctx, unit, "fail", props, ch)
		if dbusErrorName(err) == "org.freedesktop.systemd1.UnitExists" {
			if !time.Now().Before(deadline) {
				var refs []string
				if p, err := b.conn.GetUnitPropertyContext(ctx, unit, "Refs"); err == nil {
					refs, _ = p.Value.Value().([]string)
				}
				return "", fmt.Errorf("systemd: start %s: %w (references: %v)", unit, errStillLoaded, refs)
			}
			// Still loaded: running (the state lost it), kept for its exit
			// status, or inactive and about to be unloaded.
			info, err := b.unitInfo(ctx, unit)
			if err != nil {
				return "", err
			}
			switch info.ActiveState {
			case "active", "activating", "deactivating", "reloading":
				if _, _, err := b.stopUnit(ctx, unit, core.Grace); err != nil {
					return "", err
				}
				_ = b.conn.ResetFailedUnitContext(ctx, unit)
				stopped()
				deadline = time.Now().Add(unloadTimeout)
			case "failed":
				_ = b.conn.ResetFailedUnitContext(ctx, unit)
			default:
				if err := b.waitUnloaded(ctx, unit, deadline); err != nil {
					return "", err
				}
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("systemd: start %s: %w", unit, err)
		}
		return waitJob(ctx, ch, unit)
	}
}

// unloadTimeout bounds the wait for systemd to unload a stopped task unit
// before a start of the same task.
const unloadTimeout = 10 * time.Second

// errStillLoaded is why a start gives up after unloadTimeout.
var errStillLoaded = fmt.Errorf("the unit of the previous instance is still loaded %v after it stopped (something holds a reference on it: systemctl --user status shows it)", unloadTimeout)

// waitUnloaded waits until systemd has unloaded unit, or is about to: its
// UnitRemoved signal, or a LoadState other than loaded (read again now and
// then, in case a signal is missed: on the manager's private socket and
// without a subscriber systemd sends none), or until deadline. It returns
// nil at the deadline too; the caller's next start attempt says why.
func (b *Backend) waitUnloaded(ctx context.Context, unit string, deadline time.Time) error {
	sigs := make(chan *dbus.Signal, 64)
	b.conn.raw.Signal(sigs)
	defer b.conn.raw.RemoveSignal(sigs)
	match := []dbus.MatchOption{
		dbus.WithMatchInterface("org.freedesktop.systemd1.Manager"),
		dbus.WithMatchMember("UnitRemoved"),
		dbus.WithMatchArg(0, unit),
	}
	if !b.conn.private {
		if err := b.conn.raw.AddMatchSignalContext(ctx, match...); err == nil {
			defer func() { _ = b.conn.raw.RemoveMatchSignalContext(ctx, match...) }()
		}
	}
	// systemd sends UnitRemoved only while some client is subscribed (the
	// log agent usually is; this makes sure).
	if b.conn.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Err == nil {
		defer func() {
			_ = b.conn.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Unsubscribe", 0).Err
		}()
	}
	poll := 5 * time.Millisecond
	for {
		// Read after subscribing, so that an unload in between is seen.
		p, err := b.conn.GetUnitPropertyContext(ctx, unit, "LoadState")
		if err != nil {
			return fmt.Errorf("systemd: read %s: %w", unit, err)
		}
		if s, _ := p.Value.Value().(string); s != "loaded" {
			return nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil
		}
		timer := time.NewTimer(min(poll, wait))
		select {
		case s := <-sigs:
			timer.Stop()
			if s.Name == "org.freedesktop.systemd1.Manager.UnitRemoved" && len(s.Body) > 0 && s.Body[0] == unit {
				return nil
			}
		case <-timer.C:
			poll = min(2*poll, 200*time.Millisecond)
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("systemd: waiting for %s to unload: %w", unit, ctx.Err())
		}
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

// stopEscaped stops the processes of the instance token that left the
// unit's cgroup (`systemd-run --user --scope` inside a task moves a child
// to a scope of its own, where the unit's stop does not reach it): every
// process of the caller whose environment carries the token, verified
// before each signal, as proc.StopTree does for the fork backend. The
// processes inside other tasks' units are looked past first
// (mayHaveEscaped), so that a stop with nothing escaped reads no other
// task's environment. The scopes they were in are left failed by their
// end: systemd is made to forget them.
func (b *Backend) stopEscaped(ctx context.Context, unit, token string, sig syscall.Signal, grace time.Duration) error {
	if token == "" {
		return nil
	}
	escaped, scopes := mayHaveEscaped(unit, token)
	if !escaped {
		return nil
	}
	killed, err := proc.StopTree(core.Proc{}, token, sig, grace)
	if killed {
		core.NoteKilled(ctx)
	}
	for _, sc := range scopes {
		b.forgetScope(ctx, sc)
	}
	return err
}

// forgetScope resets a scope whose processes btl stopped once systemd has
// seen it empty (it fails then, its processes having been killed), briefly
// waiting for that; a scope that still runs something is left alone.
func (b *Backend) forgetScope(ctx context.Context, scope string) {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		p, err := b.conn.GetUnitPropertyContext(ctx, scope, "ActiveState")
		if err != nil {
			return
		}
		switch st, _ := p.Value.Value().(string); st {
		case "failed":
			_ = b.conn.ResetFailedUnitContext(ctx, scope)
			return
		case "inactive", "":
			return
		}
	}
}

// stopUnit stops unit and waits for it: systemd sends SIGTERM to every
// process of the unit; after grace, btl has it send SIGKILL. A unit systemd
// does not know is not an error; known reports whether it knew the unit,
// killed whether SIGKILL was sent.
func (b *Backend) stopUnit(ctx context.Context, unit string, grace time.Duration) (known, killed bool, err error) {
	ch := make(chan string, 1)
	_, err = b.conn.StopUnitContext(ctx, unit, "replace", ch)
	if dbusErrorName(err) == "org.freedesktop.systemd1.NoSuchUnit" {
		return false, false, nil
	}
	if err != nil {
		return true, false, fmt.Errorf("systemd: stop %s: %w", unit, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-ch:
		return true, false, nil
	case <-ctx.Done():
		return true, false, fmt.Errorf("systemd: stop %s: %w", unit, ctx.Err())
	case <-timer.C:
	}
	_ = b.conn.KillUnitWithTarget(ctx, unit, sd.All, int32(unix.SIGKILL))
	kill := time.NewTimer(10 * time.Second)
	defer kill.Stop()
	select {
	case <-ch:
		return true, true, nil
	case <-ctx.Done():
		return true, true, fmt.Errorf("systemd: stop %s: %w", unit, ctx.Err())
	case <-kill.C:
		return true, true, fmt.Errorf("systemd: stop %s: still stopping 10s after SIGKILL", unit)
	}
}

// Stop stops t's unit: SIGTERM to every process in its cgroup, SIGKILL to
// what is left after grace. A unit that runs another instance than t is
// left alone. It copies no journal: the log agent copies the last lines
// (it runs until no task may print), and a start that replaces t copies
// them before its start marker.
func (b *Backend) Stop(ctx context.Context, t core.Task, grace time.Duration) error {
	b.snap = nil
	if err := b.connected(ctx); err != nil {
		return err
	}
	unit := b.unitOf(t)
	info, err := b.recentInfo(ctx, unit)
	b.read = nil
	if err != nil {
		return err
	}
	if info.Loaded && !info.owns(t) {
		return nil
	}
	if info.Loaded {
		begun := time.Now()
		_, killed, err := b.stopUnit(ctx, unit, grace)
		if !killed && err == nil && time.Since(begun) >= grace {
			// systemd's own timeout (TimeoutStopUSec, the task's stop
			// timeout) may have sent SIGKILL first: it leaves the unit
			// failed with Result=timeout.
			if p, err := b.conn.GetUnitTypePropertyContext(ctx, unit, "Service", "Result"); err == nil {
				killed = p.Value.Value() == "timeout"
			}
		}
		if killed {
			core.NoteKilled(ctx)
		}
		if err != nil {
			return err
		}
		b.stopped[t.Hash] = true
		// A unit whose program failed, or needed SIGKILL, is kept as
		// failed: systemd forgets it only once that is reset.
		_ = b.conn.ResetFailedUnitContext(ctx, unit)
		if killed {
			after, err := b.unitInfo(ctx, unit)
			if err != nil {
				return err
			}
			if after.owns(t) && after.running() {
				return &core.SurvivorsError{PIDs: []int{after.MainPID}}
			}
		}
	}
	// The task ended (or was just stopped); a child that escaped to a
	// scope of its own may still run.
	return b.stopEscaped(ctx, unit, t.Token, t.StopPolicy().Signal, grace)
}

// Inspect reports t as running while its unit runs t's instance (also once
// its main process exited while processes it started remain in the
// unit's cgroup), and otherwise how its main process ended: from the unit
// while systemd keeps it (RemainAfterExit keeps a unit whose program
// ended by itself or by a signal), and once a stop made it forget the
// unit, from the exit record the log agent wrote when it saw the main
// process end.
func (b *Backend) Inspect(ctx context.Context, t core.Task) (core.Status, error) {
	info, err := b.infoFor(ctx, t)
	if err != nil {
		return core.Status{}, err
	}
	owns := info.owns(t)
	restarting := owns && info.Loaded && info.SubState == "auto-restart"
	mainExited := owns && info.mainExited()
	if owns && info.running() || restarting || mainExited {
		if !b.agentSeen {
			// A task runs: so must its log agent (it may have been killed).
			b.agentSeen = true
			_ = b.ensureAgent(ctx, logMax())
		}
		st := core.Status{State: core.Running, PID: info.MainPID, Restarts: info.NRestarts}
		if restarting {
			st.PID = info.ExecMainPID
		}
		if mainExited {
			st.PID, st.MainExited = t.PID, true
		}
		if info.NRestarts > 0 {
			st.LastExit = b.lastExit(t.Hash)
		}
		return st, nil
	}
	policy, _ := core.ParseRestart(t.Restart)
	if owns {
		if st, ok := info.exitStatus(); ok {
			if info.NRestarts > 0 {
				st.PID = info.ExecMainPID // the last run's, not the first's
			}
			return endOfRestarts(st, policy, info.NRestarts, info.ActiveState == "failed"), nil
		}
	}
	// A unit restarted since its start has another main PID than the
	// recorded one; its record of runs (removed by each start) is its own.
	pid := t.PID
	if policy.Enabled() {
		pid = 0
	}
	if r, err := b.runsOf(t.Hash); err == nil && r.Ended != nil && (pid == 0 && policy.Enabled() || pid != 0 && r.PID == pid) {
		st := *r.Ended
		if r.Restarts() > 0 {
			st.PID = r.PID // the last run's
		}
		// A failed unit stays loaded: this one ended without failing.
		return endOfRestarts(st, policy, r.Restarts(), false), nil
	}
	return core.Status{State: core.Gone}, nil
}

// endOfRestarts completes the final status st of a task with a restart
// policy: its restarts, how the last run ended (st itself), and whether
// systemd gave up on it. A failed unit whose last end is one the
// policy restarts after is the start limit's doing (systemd 252 keeps the
// last run's result, not start-limit-hit, in Result): a crash loop. A stop
// from outside leaves the unit inactive, not failed.
func endOfRestarts(st core.Status, p core.RestartPolicy, restarts int, failed bool) core.Status {
	if !p.Enabled() {
		return st
	}
	st.Restarts = restarts
	if restarts > 0 {
		st.LastExit = st.String()
	}
	st.CrashLoop = failed && (st.State == core.Exited || st.State == core.Signaled) && p.Restarts(st)
	if st.CrashLoop && st.Restarts > 0 {
		// NRestarts counts the restart the start limit refused.
		st.Restarts--
	}
	return st
}

// runsOf reads the record of the runs of the task with the given hash,
// which the log agent keeps per hash (units are named after it), or, for
// a task whose end an earlier btl's agent recorded, the record its files
// amount to.
func (b *Backend) runsOf(hash string) (core.Runs, error) {
	r, err := core.ReadRuns(b.dirs, hash)
	if errors.Is(err, os.ErrNotExist) {
		if old, ok := readLegacy(b.dirs.Run, hash); ok {
			return old, nil
		}
	}
	return r, err
}

// lastExit is how the last run of the task with the given hash that
// ended, ended ("exited 1"), as the log agent recorded; "" when unknown.
func (b *Backend) lastExit(hash string) string {
	if r, err := b.runsOf(hash); err == nil && r.Ended != nil {
		return r.Ended.String()
	}
	return ""
}

// List returns the running task units of this data directory, read back
// from their properties: the command from Description, argv from
// ExecStart, the working directory from WorkingDirectory. A unit whose
// environment's BTL_HASH is not its own hash, or whose hash is not one
// btl gives its command and directory (Hash or a DerivedHash), was not
// made by btl and is left out; units of other data directories have
// another key in their names.
func (b *Backend) List(ctx context.Context) ([]core.Task, error) {
	return b.ListUnknown(ctx, nil)
}

var _ core.UnknownLister = (*Backend)(nil)

// ListUnknown is List without the units whose main process is among
// known: only the others are read whole.
func (b *Backend) ListUnknown(ctx context.Context, known []core.Proc) ([]core.Task, error) {
	if err := b.connected(ctx); err != nil {
		return nil, err
	}
	snap, err := b.takeSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	key := dirKey(b.dirs.Run)
	var out []core.Task
	for name, info := range snap.units {
		hash, k, ok := hashOfUnit(name)
		if !ok || k != key {
			continue
		}
		if info.partial {
			if info.MainPID == 0 || slices.ContainsFunc(known, func(p core.Proc) bool { return p.PID == info.MainPID }) {
				continue
			}
			if info, err = b.unitInfo(ctx, name); err != nil {
				return nil, err
			}
		}
		mainExited := info.mainExited()
		if !info.running() && !mainExited || info.Hash != hash || !hashFits(info.Dir, info.Description, hash) {
			continue
		}
		t := core.Task{
			Hash:      hash,
			PID:       info.MainPID,
			Command:   info.Description,
			Cwd:       info.Dir,
			Argv:      info.Argv,
			LogFile:   b.dirs.LogFile(hash),
			Backend:   Name,
			Unit:      name,
			Token:     info.Token,
			Restart:   info.Restart,
			LogDirect: info.Direct,
			StartedAt: info.StartedAt,
		}
		if mainExited {
			t.PID = info.ExecMainPID
		}
		if info.Stop.Signal != 0 {
			t.SetStopPolicy(info.Stop)
		}
		if slices.ContainsFunc(known, func(p core.Proc) bool { return p.PID == t.PID }) {
			continue
		}
		if p, err := proc.LookupProc(t.PID); err == nil {
			t.ProcStart = p.Start
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unit < out[j].Unit })
	return out, nil
}

// hashFits reports whether hash is one btl gives the command cmd in dir:
// its Hash, or one of its DerivedHash values (two different tasks whose
// hashes collide).
func hashFits(dir, cmd, hash string) bool {
	if core.Hash(dir, cmd) == hash {
		return true
	}
	for n := 1; n <= 1000; n++ {
		if core.DerivedHash(dir, cmd, n) == hash {
			return true
		}
	}
	return false
}

// SyncLog copies the journal entries of t's unit that its log file lacks.
// It does nothing for a task whose output goes to the file directly.
func (b *Backend) SyncLog(ctx context.Context, t core.Task) error {
	if t.LogDirect {
		return nil
	}
	return b.journalFor(b.unitOf(t), t.Hash, logFileOf(b.dirs, t), logMax()).sync(ctx)
}

// unitOf is the unit of t. It is derived from the hash and the data
// directory, never taken from state.json's unit field (an edited state
// must not lead btl to stop a unit that is not one of its own), except
// that a task started by an earlier version keeps the name it was given
// then.
func (b *Backend) unitOf(t core.Task) string {
	if t.Unit == legacyUnitName(t.Hash) {
		return t.Unit
	}
	return UnitName(b.dirs.Run, t.Hash)
}

func logFileOf(dirs core.Dirs, t core.Task) string {
	if t.LogFile != "" {
		return t.LogFile
	}
	return dirs.LogFile(t.Hash)
}

// logMax is the log size limit for copies made by this process.
func logMax() int64 {
	n, err := logfile.LogMax(os.Environ())
	if err != nil {
		return logfile.DefaultLogMax
	}
	return n
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

// Release makes systemd forget t once btl does: it unloads the unit that
// was kept for t's exit status, and removes t's exit record. A unit that
// runs another instance is left alone.
func (b *Backend) Release(ctx context.Context, t core.Task) error {
	b.snap, b.read = nil, nil
	if err := b.connected(ctx); err != nil {
		return err
	}
	unit := b.unitOf(t)
	info, err := b.unitInfo(ctx, unit)
	// A unit whose main process has ended may still run its stop
	// commands; it fails only once they are done, and only then can its
	// failure be reset.
	for deadline := time.Now().Add(2 * time.Second); err == nil && info.owns(t) && info.ActiveState == "deactivating" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		info, err = b.unitInfo(ctx, unit)
	}
	if err != nil || !info.owns(t) || info.running() {
		if err == nil && !info.Loaded {
			_ = os.Remove(core.RunsFile(b.dirs, t.Hash))
			removeLegacy(b.dirs.Run, t.Hash)
		}
		return err
	}
	_ = os.Remove(core.RunsFile(b.dirs, t.Hash))
	removeLegacy(b.dirs.Run, t.Hash)
	if info.ActiveState != "failed" && info.ActiveState != "inactive" {
		if _, _, err := b.stopUnit(ctx, unit, core.Grace); err != nil {
			return err
		}
	}
	if err := b.conn.ResetFailedUnitContext(ctx, unit); err != nil && dbusErrorName(err) != "org.freedesktop.systemd1.NoSuchUnit" {
		return fmt.Errorf("systemd: reset %s: %w", unit, err)
	}
	return nil
}
