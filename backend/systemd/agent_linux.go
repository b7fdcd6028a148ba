package systemd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"btl/core"
	"btl/internal/proc"
	"btl/internal/reexec"
	"btl/internal/regular"
)

// Timing of the log agent.
const (
	// agentMinGap spaces the copies of one task while it prints without
	// pause, so a chatty task costs at most a few journalctl runs a second.
	agentMinGap = 100 * time.Millisecond
	// agentDrain is how long the agent stays once no task runs, counted
	// from the last entry of its tasks it saw, while btl still records a
	// task (see drain): journald may write a stopped task's last lines
	// seconds late on a busy machine.
	agentDrain = 5 * time.Second
	// agentIdleLook is how often an agent with no task running looks
	// whether its drain is over.
	agentIdleLook = 250 * time.Millisecond
	// agentReady bounds how long a start waits for a log agent it
	// started to listen.
	agentReady = 5 * time.Second
	// agentRecheck is how often the agent lists its task units to correct
	// its view should a signal have been missed: one call, whatever the
	// number of tasks.
	agentRecheck = time.Minute
)

// agentConfig configures a log agent; it travels in AgentEnv as JSON.
type agentConfig struct {
	Dirs       core.Dirs `json:"dirs"`
	Journalctl string    `json:"journalctl"`
	Args       []string  `json:"args,omitempty"`
	LogMax     int64     `json:"log_max"`
	Readable   bool      `json:"readable"` // whether the journal can be read
}

func init() {
	reexec.Register(AgentEnv, runAgent)
}

// runAgent runs the log agent of the configuration cfg (AgentEnv's value).
func runAgent(cfg string) int {
	os.Unsetenv(AgentEnv)
	// It stays for as long as tasks run, mostly waiting: a small heap and
	// one processor keep what it holds small.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)
	var c agentConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintf(os.Stderr, "btl log agent: bad %s: %v\n", AgentEnv, err)
		return 2
	}
	return c.run()
}

// agent is a running log agent. It only reacts: to journal entries of its
// tasks (it copies them) and to its task units' signals (it records how
// their main processes ended, and notices when none runs). Nothing it does
// grows with the number of tasks while they are silent, and it never reads
// a unit in answer to a signal (a read by name loads an unloaded unit
// again, which is signalled in turn).
type agent struct {
	cfg  agentConfig
	conn *conn
	uid  int
	key  string // the data directory's key in unit names

	live     map[string]bool     // task units that may still print
	recorded map[string]exitNote // the exit record last written per unit
	noted    map[string]string   // the copy error last noted in each task's log
}

// exitNote is what an exit record says.
type exitNote struct{ pid, code, status, restarts int }

func (c agentConfig) run() int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
	cn, err := dial(dctx)
	dcancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "btl log agent: %v\n", err)
		return 1
	}
	defer cn.Close()
	a := &agent{
		cfg: c, conn: cn, uid: os.Getuid(), key: dirKey(c.Dirs.Run),
		live: map[string]bool{}, recorded: map[string]exitNote{}, noted: map[string]string{},
	}

	// Unit signals: on the manager's private socket systemd sends every
	// signal to every client; on the bus only to subscribers, and the bus
	// forwards only what the match rules ask for.
	raw := make(chan *dbus.Signal, 256)
	cn.raw.Signal(raw)
	signals := a.relevant(raw)
	if !cn.private {
		for _, m := range [][]dbus.MatchOption{
			{dbus.WithMatchInterface("org.freedesktop.DBus.Properties"), dbus.WithMatchMember("PropertiesChanged"),
				dbus.WithMatchPathNamespace("/org/freedesktop/systemd1/unit")},
			{dbus.WithMatchInterface("org.freedesktop.systemd1.Manager"), dbus.WithMatchMember("UnitRemoved")},
		} {
			if err := cn.raw.AddMatchSignal(m...); err != nil {
				fmt.Fprintf(os.Stderr, "btl log agent: add match: %v\n", err)
			}
		}
		if err := cn.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Err; err != nil {
			fmt.Fprintf(os.Stderr, "btl log agent: subscribe: %v\n", err)
		}
	}
	// The agent holds its liveness lock for its whole life, from the
	// moment it hears its units' signals: btl checks that an agent runs by
	// trying it, without a call to the manager, and a start that started
	// the agent returns once it holds it, so that a stop from outside
	// right after is heard.
	live, ok := holdLiveLock(c.Dirs.Run)
	if !ok {
		return 0 // another agent of this data directory runs
	}
	defer runtime.KeepAlive(live) // the lock is held until the process ends

	// Logs: one journalctl follows every btl unit of the user; each entry
	// of a task marks it for a copy from its own cursor. It starts a
	// little in the past, and every task is copied once now, so that
	// nothing logged while the agent was down is missed.
	dirty := make(chan string, 1024)
	if c.Readable {
		go a.follow(ctx, time.Now().Add(-time.Second), dirty)
	}
	pending := map[string]bool{}
	for _, u := range a.scanned(ctx) {
		pending[u] = true
	}
	a.copyAll(ctx, pending)

	recheck := time.NewTicker(agentRecheck)
	defer recheck.Stop()
	// Once no task runs, the agent looks every agentIdleLook whether its
	// drain is over: agentDrain from the last entry of its tasks it saw
	// while btl still records one, at once when btl forgot them all.
	var flush, idle <-chan time.Time
	var quiet time.Time // when the last task ended or the last entry came
	armIdle := func() {
		if len(a.live) == 0 && idle == nil {
			quiet = time.Now()
			idle = time.After(agentIdleLook)
		}
	}
	armIdle()
	for {
		select {
		case u := <-dirty:
			pending[u] = true
			if flush == nil {
				flush = time.After(agentMinGap)
			}
			quiet = time.Now()
		case <-flush:
			flush = nil
			// A restarted task's start marker goes before its new run's
			// lines: the changes systemd signalled come first.
			a.drainSignals(ctx, signals)
			a.copyAll(ctx, pending)
		case s, ok := <-signals:
			if !ok {
				// The connection to the manager is gone (daemon-reexec
				// closes its private socket's connections): copy what is
				// due and exit with a failure, so that systemd starts the
				// agent again, connected afresh.
				for _, u := range a.scanned(ctx) {
					pending[u] = true
				}
				for u := range a.live {
					pending[u] = true
				}
				a.copyAll(ctx, pending)
				fmt.Fprintln(os.Stderr, "btl log agent: the connection to the user manager is gone; restarting")
				return 1
			}
			a.record(ctx, s)
			armIdle()
		case <-recheck.C:
			a.scanned(ctx)
			armIdle()
		case <-idle:
			idle = nil
			if len(a.live) > 0 {
				continue
			}
			if time.Since(quiet) < a.drain() {
				idle = time.After(agentIdleLook)
				continue
			}
			if a.quit(ctx, signals) {
				return 0
			}
			armIdle()
		case <-sig:
			a.drainSignals(ctx, signals)
			for _, u := range a.scanned(ctx) {
				pending[u] = true
			}
			a.copyAll(ctx, pending)
			return 0
		}
	}
}

// liveLockPath is the file the running agent of a data directory holds
// locked.
func liveLockPath(run string) string { return filepath.Join(run, "agent.live") }

// holdLiveLock takes the agent's liveness lock, held as long as the file
// it returns stays open, and reports false when another process holds it.
func holdLiveLock(run string) (*os.File, bool) {
	f, err := regular.Open(liveLockPath(run), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "btl log agent: %v\n", err)
		return nil, true // run without it: better an agent too many than none
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return f, true
}

// agentRuns reports whether the log agent of the data directory runs: its
// liveness lock is held. It costs an open and a flock.
func agentRuns(run string) bool {
	f, err := regular.Open(liveLockPath(run), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	if unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// The D-Bus interfaces of a unit whose property changes the agent follows.
const (
	unitIface    = "org.freedesktop.systemd1.Unit"
	serviceIface = "org.freedesktop.systemd1.Service"
)

// relevant returns the signals of in that concern the agent's task units,
// in order. It never blocks the connection: a full channel would stop
// godbus from reading the replies to the agent's own calls.
func (a *agent) relevant(in <-chan *dbus.Signal) chan *dbus.Signal {
	out := make(chan *dbus.Signal)
	go func() {
		var q []*dbus.Signal
		for {
			var send chan *dbus.Signal
			var first *dbus.Signal
			if len(q) > 0 {
				send, first = out, q[0]
			}
			select {
			case s, ok := <-in:
				if !ok {
					// The connection is gone: pass on what is queued, then
					// say so.
					for _, s := range q {
						out <- s
					}
					close(out)
					return
				}
				if a.concerns(s) {
					q = append(q, s)
				}
			case send <- first:
				q = q[1:]
			}
		}
	}()
	return out
}

// concerns reports whether s is the removal of one of the agent's task
// units, a change of one's ActiveState, or a change of its service
// properties.
func (a *agent) concerns(s *dbus.Signal) bool {
	var name string
	switch s.Name {
	case "org.freedesktop.systemd1.Manager.UnitRemoved":
		if len(s.Body) > 0 {
			name, _ = s.Body[0].(string)
		}
	case "org.freedesktop.DBus.Properties.PropertiesChanged":
		if len(s.Body) < 2 {
			return false
		}
		switch iface, _ := s.Body[0].(string); iface {
		case unitIface, serviceIface:
		default:
			return false
		}
		name, _ = unitOfPath(s.Path)
	default:
		return false
	}
	_, ok := a.hashOf(name)
	return ok
}

// known reports whether btl still keeps files for the task of hash: its
// journal cursor, which every start writes and kill removes.
func (a *agent) known(hash string) bool {
	_, err := os.Lstat(filepath.Join(a.cfg.Dirs.Run, hash+".cursor"))
	return err == nil
}

// drain is how long the agent stays once no task runs: agentDrain while
// btl records a task whose lines it may still have to copy (a cursor
// file), none once btl forgot them all (kill --all): it copies nothing
// for a forgotten task.
func (a *agent) drain() time.Duration {
	if m, _ := filepath.Glob(filepath.Join(a.cfg.Dirs.Run, "*.cursor")); len(m) == 0 {
		return 0
	}
	return agentDrain
}

// hashOf returns the hash of one of this data directory's task units.
func (a *agent) hashOf(unit string) (string, bool) {
	h, key, ok := hashOfUnit(unit)
	return h, ok && key == a.key
}

// quit makes the last copies and reports whether the agent may exit: it
// holds the agent lock, which a btl that starts a task takes before it
// checks for a running agent, so a task started meanwhile is never left
// without one. The lock ends with the process.
func (a *agent) quit(ctx context.Context, signals <-chan *dbus.Signal) bool {
	unlock, err := core.LockFile(filepath.Join(a.cfg.Dirs.Run, "agent.lock"))
	if errors.Is(err, os.ErrNotExist) {
		return true // the data directory is gone: nothing left to do
	}
	if err != nil {
		return false
	}
	a.drainSignals(ctx, signals)
	units, err := a.scan(ctx)
	pending := map[string]bool{}
	for _, u := range units {
		pending[u] = true
	}
	a.copyAll(ctx, pending)
	if err == nil && len(a.live) == 0 {
		return true // the lock is held until the process is gone
	}
	unlock()
	return false
}

func (a *agent) drainSignals(ctx context.Context, signals <-chan *dbus.Signal) {
	for {
		select {
		case s, ok := <-signals:
			if !ok {
				return
			}
			a.record(ctx, s)
		default:
			return
		}
	}
}

// scan lists this data directory's task units systemd has loaded, makes
// the live set those that may still print, and returns them all. It is
// one call. When the manager cannot be asked, the live set is kept and
// the error returned.
func (a *agent) scan(ctx context.Context) ([]string, error) {
	units, err := a.conn.ListUnitsByPatternsContext(ctx, nil, []string{"btl-*-" + a.key + ".service"})
	if err != nil {
		return nil, err
	}
	clear(a.live)
	var out []string
	for _, u := range units {
		if _, ok := a.hashOf(u.Name); !ok {
			continue
		}
		if unitLive(u.ActiveState, u.SubState) || a.mainExited(ctx, u.Name, u.ActiveState, u.SubState) {
			a.live[u.Name] = true
		}
		out = append(out, u.Name)
	}
	return out, nil
}

// scanned is scan without its error.
func (a *agent) scanned(ctx context.Context) []string {
	units, _ := a.scan(ctx)
	return units
}

// unitLive reports whether a unit in this state may still print.
func unitLive(active, sub string) bool {
	switch active {
	case "active", "activating", "deactivating", "reloading":
		return sub != "exited"
	}
	return false
}

// journal returns the copier of a task unit, with the task's own log size
// limit (its cursor file keeps it).
func (a *agent) journal(unit string) *journal {
	h, _ := a.hashOf(unit)
	return &journal{
		Journalctl: a.cfg.Journalctl,
		Args:       a.cfg.Args,
		UID:        a.uid,
		Ident:      syslogIdent(unit),
		LogFile:    a.cfg.Dirs.LogFile(h),
		LogMax:     a.cfg.LogMax,
		Cursor:     filepath.Join(a.cfg.Dirs.Run, h+".cursor"),
		Lock:       filepath.Join(a.cfg.Dirs.Run, h+".log.lock"),
	}
}

// copyAll copies the new entries of every pending task unit and clears
// the set. A task whose copy fails (a FIFO or a directory where its
// cursor or log file should be) costs only that task's copy: the failure
// is noted once in its log (or on the agent's stderr, in the journal,
// when the log itself cannot be written).
func (a *agent) copyAll(ctx context.Context, pending map[string]bool) {
	if !a.cfg.Readable {
		clear(pending)
		return
	}
	for u := range pending {
		delete(pending, u)
		h, ok := a.hashOf(u)
		if !ok || !a.known(h) {
			continue // not a task, or one btl has forgotten: nothing to copy to
		}
		err := a.journal(u).sync(ctx)
		if err == nil {
			delete(a.noted, h)
			continue
		}
		if a.noted[h] == err.Error() {
			continue
		}
		a.noted[h] = err.Error()
		fmt.Fprintf(os.Stderr, "btl log agent: %s: %v\n", u, err)
		j := a.journal(u)
		_ = j.appendLocked([]byte(fmt.Sprintf("[btl] %s: the journal cannot be copied here: %v\n",
			time.Now().UTC().Format(time.RFC3339), err)))
	}
}

// follow runs one `journalctl --follow` over the user's entries from since
// on and sends the unit of every btl task entry to dirty, restarting
// journalctl should it exit.
func (a *agent) follow(ctx context.Context, since time.Time, dirty chan<- string) {
	for ctx.Err() == nil {
		us := since.UnixMicro()
		j := a.journal("")
		cmd := j.command(ctx, "--follow", "--no-tail", "--output=json", "--output-fields=SYSLOG_IDENTIFIER",
			fmt.Sprintf("--since=@%d.%06d", us/1e6, us%1e6), "_UID="+strconv.Itoa(a.uid))
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "btl log agent: journalctl: %v\n", err)
		} else {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				var e struct {
					Ident    string `json:"SYSLOG_IDENTIFIER"`
					Realtime string `json:"__REALTIME_TIMESTAMP"`
				}
				if json.Unmarshal(sc.Bytes(), &e) != nil {
					continue
				}
				if us, err := strconv.ParseInt(e.Realtime, 10, 64); err == nil {
					since = time.UnixMicro(us)
				}
				if unit := e.Ident + ".service"; strings.HasPrefix(e.Ident, "btl-") {
					if _, ok := a.hashOf(unit); ok {
						select {
						case dirty <- unit:
						default:
						}
					}
				}
			}
			_ = cmd.Wait()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// record handles a signal of one of the agent's task units: its removal
// or a change of its ActiveState updates the live set; a change of its
// service properties records how its main process ended (the values the
// signal carries: the unit is never read, so a unit systemd is about to
// forget is not loaded again) and, while systemd restarts the task, marks
// each new run in the log.
func (a *agent) record(ctx context.Context, s *dbus.Signal) {
	if s.Name == "org.freedesktop.systemd1.Manager.UnitRemoved" {
		if len(s.Body) > 0 {
			name, _ := s.Body[0].(string)
			delete(a.live, name)
		}
		return
	}
	if s.Name != "org.freedesktop.DBus.Properties.PropertiesChanged" || len(s.Body) < 2 {
		return
	}
	name, ok := unitOfPath(s.Path)
	if !ok {
		return
	}
	h, ok := a.hashOf(name)
	if !ok {
		return
	}
	changed, _ := s.Body[1].(map[string]dbus.Variant)
	if iface, _ := s.Body[0].(string); iface == serviceIface {
		a.serviceChanged(ctx, name, h, changed)
		return
	}
	active, ok := changed["ActiveState"].Value().(string)
	if !ok {
		return
	}
	sub, _ := changed["SubState"].Value().(string)
	if unitLive(active, sub) || a.mainExited(ctx, name, active, sub) {
		a.live[name] = true
	} else {
		delete(a.live, name)
	}
}

// mainExited reports whether a unit in this state is kept active after its
// main process exited while processes it started remain in its cgroup (a
// daemonising program): they may still print. Such a unit is loaded, so
// reading its cgroup loads nothing.
func (a *agent) mainExited(ctx context.Context, unit, active, sub string) bool {
	if active != "active" || sub != "exited" {
		return false
	}
	p, err := a.conn.GetUnitTypePropertyContext(ctx, unit, "Service", "ControlGroup")
	if err != nil {
		return false
	}
	cg, _ := p.Value.Value().(string)
	return cgroupBusy(cg)
}

// serviceChanged handles a change of a task unit's service properties:
// once its main process has ended, the record of the task's runs (see
// core.RecordManaged; written once per end: the run's PID, how it ended,
// the restarts systemd made); while systemd restarts it (Restart=,
// NRestarts > 0), each run gets its start marker in the log, after every line the earlier runs printed
// (copied up to the run's start) and before any of its own. The values
// are those the signal carries, of the moment of the change: a run that
// ended at once is marked too.
func (a *agent) serviceChanged(ctx context.Context, unit, h string, changed map[string]dbus.Variant) {
	v := map[string]int{}
	for _, k := range []string{"NRestarts", "ExecMainPID", "ExecMainCode", "ExecMainStatus", "ExecMainStartTimestamp"} {
		if c, ok := changed[k]; ok {
			v[k] = asInt(c.Value())
		}
	}
	pid := v["ExecMainPID"]
	if pid == 0 {
		return
	}
	// A task btl has forgotten (kill removes its files, the cursor among
	// them) gets no record: it would outlive the task.
	if note := (exitNote{pid, v["ExecMainCode"], v["ExecMainStatus"], v["NRestarts"]}); note.code != 0 && a.recorded[unit] != note && a.known(h) {
		u := unitInfo{ExecMainCode: note.code, ExecMainStatus: note.status}
		if st, ok := u.exitStatus(); ok {
			if err := core.RecordManaged(a.cfg.Dirs, h, note.pid, note.restarts, st); err != nil {
				fmt.Fprintf(os.Stderr, "btl log agent: %s: %v\n", unit, err)
			} else {
				a.recorded[unit] = note
			}
		}
	}
	if v["NRestarts"] == 0 || !a.known(h) {
		return // the first run's marker is written by Start
	}
	// A run systemd started again gets its marker once: the cursor file
	// keeps the main PID of the last run marked (Start records the
	// first), so an agent that missed a run, or was started again, marks
	// each one exactly once. A change of NRestarts signalled before the
	// new run's PID is known carries the last run's PID: nothing to mark.
	j := a.journal(unit)
	unlock, err := j.lock()
	if err != nil {
		return
	}
	defer unlock()
	if p, err := j.progress(); err != nil || p.RunPID == pid {
		return
	}
	// A restart: the unit is loaded, so reading it loads nothing.
	sp, err := a.conn.GetAllPropertiesContext(ctx, unit)
	if err != nil {
		return
	}
	at := time.Now()
	if us := v["ExecMainStartTimestamp"]; us > 0 {
		at = time.UnixMicro(int64(us))
	}
	if a.cfg.Readable && asString(sp["SyslogIdentifier"]) != "" {
		j.until = at.UnixMicro()
		_ = j.syncLocked(ctx)
	}
	_ = j.appendLocked([]byte(core.StartMarker(at, pid, asString(sp["Description"]))))
	_ = j.markRun(pid)
}

// unitOfPath returns the unit name of a systemd unit object path.
func unitOfPath(p dbus.ObjectPath) (string, bool) {
	s, ok := strings.CutPrefix(string(p), "/org/freedesktop/systemd1/unit/")
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// maxRecord bounds what btl reads of one of its small run-directory
// records (cursors, the exit records of an earlier btl).
const maxRecord = 64 << 10

// readRecord reads one of btl's small records in the run directory: a
// regular file only (a FIFO, a device or a symbolic link in its place is
// an error, never a wait), at most maxRecord bytes.
func readRecord(path string) ([]byte, error) {
	f, err := regular.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return io.ReadAll(io.LimitReader(f, maxRecord))
}

// ensureAgent starts the data directory's log agent unless it runs. It
// takes the agent lock first: an agent about to exit holds it until it is
// gone, so a running agent seen here stays for the task just started.
func (b *Backend) ensureAgent(ctx context.Context, logMax int64) error {
	if agentRuns(b.dirs.Run) {
		return nil // seen without the lock: it runs, or finishes its last copies
	}
	unlock, err := b.lockAgent()
	if err != nil {
		return err
	}
	defer unlock()
	return b.ensureAgentLocked(ctx, logMax)
}

// lockAgent takes the agent lock of the data directory.
func (b *Backend) lockAgent() (func(), error) {
	unlock, err := core.LockFile(filepath.Join(b.dirs.Run, "agent.lock"))
	if err != nil {
		return nil, fmt.Errorf("systemd: lock log agent: %w", err)
	}
	return unlock, nil
}

// ensureAgentLocked is ensureAgent for a caller that holds the agent
// lock. A running agent holds its liveness lock: checking costs no call
// to the manager.
func (b *Backend) ensureAgentLocked(ctx context.Context, logMax int64) error {
	if agentRuns(b.dirs.Run) {
		// It runs, and holds no agent lock now: it will see the new task.
		return nil
	}
	unit := AgentUnitName(b.dirs.Run)
	exe, err := reexec.SelfExe(b.exe)
	if err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	cfg, err := json.Marshal(agentConfig{
		Dirs:       b.dirs,
		Journalctl: b.journalctl,
		Args:       b.journalArgs,
		LogMax:     logMax,
		Readable:   b.journalReadable(ctx) == nil,
	})
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		ch := make(chan string, 1)
		_, err := b.conn.StartTransientUnitContext(ctx, unit, "fail", agentProps(exe, string(cfg)), ch)
		if err == nil {
			if r, err := waitJob(ctx, ch, unit); err != nil || r != "done" {
				_ = b.conn.ResetFailedUnitContext(ctx, unit)
				return fmt.Errorf("systemd: start log agent %s: job %s: %v", unit, r, err)
			}
			// Until it listens, a stop from outside would go unheard:
			// wait, briefly, for its liveness lock, which it takes once
			// it does.
			for deadline := time.Now().Add(agentReady); !agentRuns(b.dirs.Run) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			return nil
		}
		if dbusErrorName(err) != "org.freedesktop.systemd1.UnitExists" || attempt >= 40 {
			return fmt.Errorf("systemd: start log agent %s: %w", unit, err)
		}
		// The unit exists: fine while its process lives or systemd is
		// about to start it again after a crash; otherwise it is on its
		// way out, and systemd needs a moment to forget it.
		info, ierr := b.unitInfo(ctx, unit)
		if ierr == nil && info.SubState == "auto-restart" {
			return nil
		}
		if ierr == nil && info.running() {
			if p, err := proc.LookupProc(info.MainPID); err == nil && !p.Zombie {
				return nil
			}
		}
		if ierr == nil && info.ActiveState == "failed" {
			_ = b.conn.ResetFailedUnitContext(ctx, unit)
		}
		time.Sleep(25 * time.Millisecond)
		if agentRuns(b.dirs.Run) {
			return nil
		}
	}
}

// exitStatusSet is a systemd ExitStatusSet on D-Bus, (aiai): exit
// statuses and signals.
type exitStatusSet struct {
	Statuses []int32
	Signals  []int32
}

// setupFailures are the exit statuses systemd's child uses when it cannot
// set up or execute a unit's program.
func setupFailures() []int32 {
	var out []int32
	for s := exitSetupFirst; s <= exitSetupLast; s++ {
		out = append(out, int32(s))
	}
	return out
}

// agentProps are the properties of the log agent unit. It restarts after
// a crash, however often (no start limit: mirroring must never stay
// off); a clean exit (no task left) ends it.
func agentProps(exe, config string) []sd.Property {
	env := append([]string{AgentEnv + "=" + config}, reexec.ChildEnv...)
	return []sd.Property{
		sd.PropDescription("btl log agent"),
		prop("ExecStart", []execCommand{{Path: exe, Args: escapeArgs([]string{exe})}}),
		prop("Environment", env),
		prop("KillMode", "mixed"),
		prop("TimeoutStopUSec", uint64(5*time.Second/time.Microsecond)),
		prop("Restart", "on-failure"),
		prop("RestartUSec", uint64(100*time.Millisecond/time.Microsecond)),
		prop("StartLimitIntervalUSec", uint64(0)),
		// Not after systemd failed to set it up or execute it (200-243:
		// the binary is gone, say): that would loop for good. The next btl
		// command that needs an agent starts one, with its own binary.
		prop("RestartPreventExitStatus", exitStatusSet{Statuses: setupFailures()}),
		prop("CollectMode", "inactive-or-failed"),
	}
}
