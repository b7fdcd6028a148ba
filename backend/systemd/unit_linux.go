package systemd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"btl/core"
)

// execCommand is one entry of ExecStart= and friends on D-Bus, a(sasb):
// the program, its argv, and whether a failure is ignored.
type execCommand struct {
	Path         string
	Args         []string
	IgnoreErrors bool
}

func prop(name string, v any) sd.Property { return sd.Property{Name: name, Value: dbus.MakeVariant(v)} }

// escapeArgs protects arguments from systemd's own $VAR and ${VAR}
// expansion of Exec*= lines: "$$" is systemd's literal dollar.
func escapeArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "$", "$$")
	}
	return out
}

// unescapeArgs undoes escapeArgs.
func unescapeArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "$$", "$")
	}
	return out
}

// validEnv keeps the NAME=value entries systemd accepts (a shell variable
// name, a UTF-8 value), the last one of each name, in order.
func validEnv(env []string) []string {
	last := map[string]int{}
	for i, e := range env {
		name, value, ok := strings.Cut(e, "=")
		if ok && validName(name) && utf8.ValidString(value) && !strings.ContainsRune(value, 0) {
			last[name] = i
		}
	}
	var out []string
	for i, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if j, ok := last[name]; ok && j == i {
			out = append(out, e)
		}
	}
	return out
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// taskProps are the properties of a task's unit. RemainAfterExit keeps the
// unit loaded once its program has ended by itself or by a signal from
// outside, so that its exit status can be read from the unit (ExecMainCode,
// ExecMainStatus) with no process of btl's at exit; a program that exited
// non-zero leaves a failed unit, which systemd keeps anyway.
//
// With out set (the journal unreadable), stdout and stderr go to out, the
// pipe of a log pump that writes them to the log file under its cap.
func taskProps(spec core.Spec, unit string, out *os.File) []sd.Property {
	usec := func(d time.Duration) uint64 { return uint64(d / time.Microsecond) }
	props := []sd.Property{
		sd.PropDescription(spec.Command),
		prop("ExecStart", []execCommand{{Path: spec.Path, Args: escapeArgs(spec.Argv)}}),
		prop("WorkingDirectory", spec.Dir),
		prop("Environment", validEnv(spec.Env)),
		sd.PropType("exec"),
		prop("KillMode", "control-group"),
		prop("TimeoutStopUSec", usec(core.Grace)),
		prop("SendSIGKILL", true),
	}
	props = append(props, restartProps(spec.Restart)...)
	if out != nil {
		fd := dbus.UnixFD(out.Fd())
		props = append(props,
			prop("StandardOutputFileDescriptor", fd),
			prop("StandardErrorFileDescriptor", fd))
	} else {
		props = append(props,
			prop("StandardOutput", "journal"),
			prop("StandardError", "journal"),
			prop("SyslogIdentifier", syslogIdent(unit)))
	}
	return props
}

// restartProps are the properties that restart a task the way its policy
// says: Restart= with RestartSec=100ms, and a start limit of Max+1 starts
// within Max minutes (systemd 252 has no growing RestartSec; a run of a
// minute or more makes room for one more). With always, RemainAfterExit
// is off: systemd never restarts a unit it keeps active after its program
// exited 0. Such a unit stopped from outside stays loaded until the log
// agent has recorded how it ended; a crash loop leaves it failed.
func restartProps(p core.RestartPolicy) []sd.Property {
	switch p.Mode {
	case core.RestartNo:
		return []sd.Property{sd.PropRemainAfterExit(true)}
	case core.RestartOnFailure:
		// Kept after exit 0, which it is not restarted after.
		return append(startLimit(p), sd.PropRemainAfterExit(true), prop("Restart", "on-failure"))
	}
	return append(startLimit(p), sd.PropRemainAfterExit(false), prop("Restart", "always"))
}

// restartOf reads back the policy restartProps set: "" for none.
func restartOf(restart string, burst int) string {
	if burst < 2 || restart != string(core.RestartOnFailure) && restart != string(core.RestartAlways) {
		return ""
	}
	return core.RestartPolicy{Mode: core.RestartMode(restart), Max: burst - 1}.String()
}

func startLimit(p core.RestartPolicy) []sd.Property {
	return []sd.Property{
		prop("RestartUSec", uint64(core.RestartDelay/time.Microsecond)),
		prop("StartLimitIntervalUSec", uint64(time.Duration(p.Max)*time.Minute/time.Microsecond)),
		// The first start counts: Max restarts are Max+1 starts.
		prop("StartLimitBurst", uint32(p.Max+1)),
	}
}

// unitInfo is what btl reads back from a task's unit.
type unitInfo struct {
	Loaded         bool   // LoadState=loaded
	ActiveState    string // active, failed, inactive, ...
	SubState       string // auto-restart: waiting to restart the program
	NRestarts      int    // restarts systemd made (Restart=)
	Restart        string // the task's --restart, read back from Restart= and StartLimitBurst
	Description    string
	MainPID        int
	ExecMainPID    int
	ExecMainCode   int // CLD_EXITED, CLD_KILLED, CLD_DUMPED, or 0
	ExecMainStatus int // exit code or signal number
	Result         string
	Token          string // BTL_INSTANCE in the unit's Environment
	Path           string // ExecStart program
	Argv           []string
	Dir            string    // WorkingDirectory
	Direct         bool      // output to a log pump (or appended to a file), not the journal
	StartedAt      time.Time // ExecMainStartTimestamp
	Memory         uint64    // MemoryCurrent (UINT64_MAX: not set)
	CGroup         string    // ControlGroup: the unit's cgroup, "" once empty and stopped
	Hash           string    // BTL_HASH in the unit's Environment

	// partial: only the states, the description and lightProps were read
	// (a snapshot of a running unit); the instance is told by main PID.
	partial bool
}

// running reports whether the unit's main process is alive.
func (u unitInfo) running() bool {
	return u.Loaded && u.MainPID != 0 && u.ActiveState != "inactive" && u.ActiveState != "failed"
}

// mainExited reports whether the unit's main process exited while
// processes it started remain in its cgroup (RemainAfterExit keeps such
// a unit active): the task still runs.
func (u unitInfo) mainExited() bool {
	return u.Loaded && u.ActiveState == "active" && u.SubState == "exited" && cgroupBusy(u.CGroup)
}

// owns reports whether the unit is, or last ran, the instance t.
func (u unitInfo) owns(t core.Task) bool {
	switch {
	case !u.Loaded:
		return false
	case u.partial:
		return t.PID != 0 && u.MainPID == t.PID
	case t.Token != "":
		return u.Token == t.Token
	}
	return t.PID != 0 && (u.MainPID == t.PID || u.ExecMainPID == t.PID)
}

// How a process ended (ExecMainCode), as in waitid(2).
const cldExited, cldKilled, cldDumped = 1, 2, 3

// The exit codes systemd's child uses when it fails to set up or execute
// the program (EXIT_CHDIR ... EXIT_CREDENTIALS are 200..243).
const (
	exitChdir      = 200
	exitExec       = 203
	exitSetupFirst = 200
	exitSetupLast  = 243
)

// ranAndEnded reports whether the program was executed and has already
// ended: a start job fails when a Type=exec program exits non-zero at once,
// yet btl did start it.
func (u unitInfo) ranAndEnded() bool {
	switch u.ExecMainCode {
	case cldKilled, cldDumped:
		return u.ExecMainPID != 0
	case cldExited:
		return u.ExecMainPID != 0 && (u.ExecMainStatus < exitSetupFirst || u.ExecMainStatus > exitSetupLast)
	}
	return false
}

// exitStatus is how the main process ended, as systemd recorded it.
func (u unitInfo) exitStatus() (core.Status, bool) {
	switch u.ExecMainCode {
	case cldExited:
		return core.Status{State: core.Exited, Code: u.ExecMainStatus}, true
	case cldKilled, cldDumped:
		return core.Status{State: core.Signaled, Signal: u.ExecMainStatus}, true
	}
	if u.Result != "" && u.Result != "success" {
		return core.Status{State: core.Failed}, true
	}
	return core.Status{}, false
}

// unitInfo reads the unit's state. A unit systemd does not know reads as
// not loaded.
func (b *Backend) unitInfo(ctx context.Context, unit string) (unitInfo, error) {
	b.unitReads++
	sp, err := b.conn.GetAllPropertiesContext(ctx, unit)
	if err != nil {
		return unitInfo{}, fmt.Errorf("systemd: read %s: %w", unit, err)
	}
	info := parseUnitInfo(sp)
	b.read = &lastRead{unit: unit, at: time.Now(), info: info}
	return info, nil
}

// lastRead is the last unit read alone, which the next step of the same
// command may take instead of reading it again (a kill inspects the task,
// then stops it).
type lastRead struct {
	unit string
	at   time.Time
	info unitInfo
}

// recentInfo is unitInfo answered from the last read of that unit when it
// is under snapshotTTL old and nothing was changed since.
func (b *Backend) recentInfo(ctx context.Context, unit string) (unitInfo, error) {
	if r := b.read; r != nil && r.unit == unit && time.Since(r.at) < snapshotTTL {
		return r.info, nil
	}
	return b.unitInfo(ctx, unit)
}

// parseUnitInfo decodes the properties of a unit (GetAll over every
// interface).
func parseUnitInfo(sp map[string]any) unitInfo {
	u := unitInfo{
		Loaded:      asString(sp["LoadState"]) == "loaded",
		ActiveState: asString(sp["ActiveState"]),
		Description: asString(sp["Description"]),
	}
	if !u.Loaded {
		return u
	}
	u.SubState = asString(sp["SubState"])
	u.Restart = restartOf(asString(sp["Restart"]), asInt(sp["StartLimitBurst"]))
	u.NRestarts = asInt(sp["NRestarts"])
	u.MainPID = asInt(sp["MainPID"])
	u.ExecMainPID = asInt(sp["ExecMainPID"])
	u.ExecMainCode = asInt(sp["ExecMainCode"])
	u.ExecMainStatus = asInt(sp["ExecMainStatus"])
	u.Result = asString(sp["Result"])
	u.Dir = asString(sp["WorkingDirectory"])
	if env, ok := sp["Environment"].([]string); ok {
		u.Token = core.Getenv(env, core.EnvInstance)
		u.Hash = core.Getenv(env, core.EnvHash)
	}
	u.CGroup = asString(sp["ControlGroup"])
	u.Path, u.Argv = firstExec(sp["ExecStart"])
	u.Argv = unescapeArgs(u.Argv)
	// A task that logs to the journal has its SyslogIdentifier; one whose
	// output goes to a log pump (or, from older versions, is appended to
	// the file) has none.
	u.Direct = asString(sp["SyslogIdentifier"]) == "" || strings.HasPrefix(asString(sp["StandardOutput"]), "append")
	if us := asInt(sp["ExecMainStartTimestamp"]); us > 0 {
		u.StartedAt = time.UnixMicro(int64(us)).UTC()
	}
	u.Memory, _ = sp["MemoryCurrent"].(uint64)
	return u
}

// snapshot is what one read of every btl unit of the manager gave: the
// state of each loaded task unit, by name. A unit not in it was not
// loaded.
type snapshot struct {
	at    time.Time
	units map[string]unitInfo
}

// snapshotTTL is how long a snapshot answers Inspect and Memory. btl list
// asks about every task right after List took one; a longer-lived caller
// (btl logs -f) takes a new one with each List.
const snapshotTTL = time.Second

// snapshotWindow bounds the property reads a snapshot has in flight.
const snapshotWindow = 64

// lightProps are the properties a snapshot reads of a running task unit,
// one Get each: all that list shows of it, and its main PID, which
// proves it is the recorded instance. The whole unit (hundreds of
// properties, the environment among them) is read only for a unit that
// ended or restarts, or one btl does not know.
var lightProps = []string{"MainPID", "NRestarts", "MemoryCurrent"}

// takeSnapshot reads every loaded task unit of the data directory: one
// ListUnitsByPatterns (name, description, states), then the few properties
// of each running unit (lightProps), or all of them for the others, the
// reads pipelined on the connection rather than one round trip after
// another.
func (b *Backend) takeSnapshot(ctx context.Context) (*snapshot, error) {
	key := dirKey(b.dirs.Run)
	list, err := b.conn.ListUnitsByPatternsContext(ctx, nil, []string{"btl-*-" + key + ".service", "btl-????????????????.service"})
	if err != nil {
		return nil, fmt.Errorf("systemd: list units: %w", err)
	}
	snap := &snapshot{units: map[string]unitInfo{}}
	done := make(chan *dbus.Call, snapshotWindow)
	inflight := 0
	collect := func() error {
		c := <-done
		inflight--
		name, _ := unitOfPath(c.Path)
		if c.Err != nil {
			return fmt.Errorf("systemd: read %s: %w", name, c.Err)
		}
		info := snap.units[name]
		if c.Method == "org.freedesktop.DBus.Properties.Get" {
			var v dbus.Variant
			if err := c.Store(&v); err != nil {
				return fmt.Errorf("systemd: read %s: %w", name, err)
			}
			switch prop, _ := c.Args[1].(string); prop {
			case "MainPID":
				info.MainPID = asInt(v.Value())
			case "NRestarts":
				info.NRestarts = asInt(v.Value())
			case "MemoryCurrent":
				info.Memory, _ = v.Value().(uint64)
			}
			snap.units[name] = info
			return nil
		}
		var props map[string]dbus.Variant
		if err := c.Store(&props); err != nil {
			return fmt.Errorf("systemd: read %s: %w", name, err)
		}
		sp := make(map[string]any, len(props))
		for k, v := range props {
			sp[k] = v.Value()
		}
		snap.units[name] = parseUnitInfo(sp)
		return nil
	}
	var firstErr error
	call := func(path dbus.ObjectPath, method string, args ...any) {
		if inflight == snapshotWindow {
			if err := collect(); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		b.conn.raw.Object("org.freedesktop.systemd1", path).GoWithContext(ctx, method, 0, done, args...)
		inflight++
	}
	for _, u := range list {
		if _, k, ok := hashOfUnit(u.Name); !ok || k != key && k != "" || u.LoadState != "loaded" {
			continue
		}
		if unitLive(u.ActiveState, u.SubState) && u.SubState != "auto-restart" {
			snap.units[u.Name] = unitInfo{Loaded: true, ActiveState: u.ActiveState, SubState: u.SubState, Description: u.Description, partial: true}
			for _, p := range lightProps {
				call(u.Path, "org.freedesktop.DBus.Properties.Get", serviceIface, p)
			}
			continue
		}
		call(u.Path, "org.freedesktop.DBus.Properties.GetAll", "")
	}
	for inflight > 0 {
		if err := collect(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	// Its age counts from when it is complete: reading hundreds of units
	// on a loaded machine may take longer than it is used for.
	snap.at = time.Now()
	b.snap = snap
	return snap, nil
}

// infoFor is what Inspect and Memory know of t's unit: from the snapshot
// while it is fresh, the whole unit when the snapshot's few properties do
// not prove that the unit runs t's instance (a restarted task has another
// main PID than the recorded one), or without a snapshot.
func (b *Backend) infoFor(ctx context.Context, t core.Task) (unitInfo, error) {
	unit := b.unitOf(t)
	info, err := b.cachedInfo(ctx, unit)
	if err == nil && info.partial && !info.owns(t) {
		return b.unitInfo(ctx, unit)
	}
	return info, err
}

// cachedInfo is unitInfo answered from the last snapshot while it is
// fresh; once it aged, or without one, the unit alone is read. A snapshot
// is never taken anew here: a slow command asks about each task once, and
// reading them all again for each would multiply its calls.
func (b *Backend) cachedInfo(ctx context.Context, unit string) (unitInfo, error) {
	if err := b.connected(ctx); err != nil {
		return unitInfo{}, err
	}
	if b.snap != nil && time.Since(b.snap.at) > snapshotTTL {
		b.snap = nil
	}
	if b.snap == nil {
		return b.unitInfo(ctx, unit)
	}
	return b.snap.units[unit], nil
}

// cgroupRoots are where a unit's ControlGroup may be found: the unified
// hierarchy (cgroup v2, or v2 beside v1) and v1's name=systemd.
var cgroupRoots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"}

// cgroupBusy reports whether processes remain in the cgroup cg: a unit
// whose main process exited is still running while they do (a
// daemonising program, `cmd &` in a shell that exits).
func cgroupBusy(cg string) bool {
	if cg == "" || strings.Contains(cg, "..") {
		return false
	}
	for _, root := range cgroupRoots {
		b, err := readRecord(root + cg + "/cgroup.procs")
		if err != nil {
			continue
		}
		return len(strings.TrimSpace(string(b))) > 0
	}
	return false
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asInt(v any) int {
	switch n := v.(type) {
	case uint32:
		return int(n)
	case int32:
		return int(n)
	case uint64:
		return int(n)
	case int64:
		return int(n)
	}
	return 0
}

// firstExec decodes the program and argv of the first entry of an ExecStart
// property, a(sasbttttuii).
func firstExec(v any) (string, []string) {
	cmds, ok := v.([][]any)
	if !ok || len(cmds) == 0 || len(cmds[0]) < 2 {
		return "", nil
	}
	path, _ := cmds[0][0].(string)
	argv, _ := cmds[0][1].([]string)
	return path, argv
}

// hashOfUnit returns the hash of a task unit name and the key of its data
// directory ("" for a unit named by earlier versions), and whether name is
// a task unit name at all.
func hashOfUnit(name string) (hash, key string, ok bool) {
	s, ok := strings.CutPrefix(name, "btl-")
	if !ok {
		return "", "", false
	}
	if s, ok = strings.CutSuffix(s, ".service"); !ok {
		return "", "", false
	}
	hash, key, _ = strings.Cut(s, "-")
	if !core.ValidHash(hash) || key != "" && !isHex(key, 8) {
		return "", "", false
	}
	return hash, key, true
}

// isHex reports whether s is n lower-case hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
