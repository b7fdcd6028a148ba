package systemd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"btl/core"
	"btl/internal/logfile"
	"btl/internal/proc"
	"btl/internal/reexec"
)

// Timing of the log agent.
const (
	// agentMinGap spaces the copies of one task while it prints without
	// pause, so a chatty task costs at most a few journalctl runs a second.
	agentMinGap = 100 * time.Millisecond
	// agentSafety is how often the agent copies every task even without a
	// wake-up.
	agentSafety = 30 * time.Second
	// agentPoll is how often the agent checks whether any task still runs.
	agentPoll = 500 * time.Millisecond
	// agentDrain is how long the agent stays once no task runs: journald
	// may still be writing the last tasks' last lines.
	agentDrain = time.Second
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
	var c agentConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintf(os.Stderr, "btl log agent: bad %s: %v\n", AgentEnv, err)
		return 2
	}
	return c.run()
}

// agent is a running log agent.
type agent struct {
	cfg  agentConfig
	conn *conn
	uid  int
	refs map[string]bool  // task units the agent holds a reference on
	runs map[string]int   // each task unit's main PID as last signalled
	max  map[string]int64 // each task's log size limit, from its unit
}

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
	a := &agent{cfg: c, conn: cn, uid: os.Getuid(), refs: map[string]bool{}, max: map[string]int64{}, runs: map[string]int{}}

	// Exit statuses: the agent holds a reference on each of its task
	// units (taken when it starts, and on UnitNew), so that a unit that is
	// stopped stays loaded until the agent has recorded how its main
	// process ended; then it drops the reference.
	raw := make(chan *dbus.Signal, 256)
	cn.raw.Signal(raw)
	signals := a.relevant(raw)
	if !cn.private {
		for _, m := range [][]dbus.MatchOption{
			{dbus.WithMatchInterface("org.freedesktop.DBus.Properties"), dbus.WithMatchMember("PropertiesChanged"),
				dbus.WithMatchPathNamespace("/org/freedesktop/systemd1/unit")},
			{dbus.WithMatchInterface("org.freedesktop.systemd1.Manager"), dbus.WithMatchMember("UnitNew")},
		} {
			if err := cn.raw.AddMatchSignal(m...); err != nil {
				fmt.Fprintf(os.Stderr, "btl log agent: add match: %v\n", err)
			}
		}
	}
	if err := cn.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Err; err != nil {
		fmt.Fprintf(os.Stderr, "btl log agent: subscribe: %v\n", err)
	}

	// Logs: one journalctl follows every btl unit of the user; each entry
	// of a task marks it for a copy from its own cursor. It starts a
	// little in the past, and every task is copied once after it started,
	// so that nothing logged while the agent was down is missed.
	dirty := make(chan string, 1024)
	if c.Readable {
		go a.follow(ctx, time.Now().Add(-time.Second), dirty)
	}
	pending := map[string]bool{}
	for _, h := range a.tasks(ctx, false) {
		pending[h] = true
		a.ref(ctx, UnitName(h))
	}
	a.copyAll(ctx, pending)

	poll := time.NewTicker(agentPoll)
	defer poll.Stop()
	safety := time.NewTicker(agentSafety)
	defer safety.Stop()
	var flush <-chan time.Time
	var idleSince time.Time
	for {
		select {
		case h := <-dirty:
			pending[h] = true
			if flush == nil {
				flush = time.After(agentMinGap)
			}
		case <-flush:
			flush = nil
			// A restarted task's start marker goes before its new run's
			// lines: the changes systemd signalled come first.
			a.drainSignals(ctx, signals)
			a.copyAll(ctx, pending)
		case s := <-signals:
			a.record(ctx, s)
		case <-safety.C:
			for _, h := range a.tasks(ctx, false) {
				pending[h] = true
			}
			a.copyAll(ctx, pending)
		case <-poll.C:
			if len(a.tasks(ctx, true)) > 0 {
				idleSince = time.Time{}
				continue
			}
			if idleSince.IsZero() {
				idleSince = time.Now()
				continue
			}
			if time.Since(idleSince) < agentDrain {
				continue
			}
			if a.quit(ctx, signals) {
				return 0
			}
			idleSince = time.Time{}
		case <-sig:
			a.drainSignals(ctx, signals)
			for _, h := range a.tasks(ctx, false) {
				pending[h] = true
			}
			a.copyAll(ctx, pending)
			return 0
		}
	}
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

// concerns reports whether s is a UnitNew of one of the agent's task units,
// a change of one's ActiveState, or a change of its service properties.
func (a *agent) concerns(s *dbus.Signal) bool {
	var name string
	switch s.Name {
	case "org.freedesktop.systemd1.Manager.UnitNew":
		if len(s.Body) > 0 {
			name, _ = s.Body[0].(string)
		}
	case "org.freedesktop.DBus.Properties.PropertiesChanged":
		if len(s.Body) < 2 {
			return false
		}
		changed, _ := s.Body[1].(map[string]dbus.Variant)
		switch iface, _ := s.Body[0].(string); iface {
		case unitIface:
			if _, ok := changed["ActiveState"]; !ok {
				return false
			}
		case serviceIface:
			if _, ok := changed["NRestarts"]; !ok {
				return false
			}
		default:
			return false
		}
		name, _ = unitOfPath(s.Path)
	default:
		return false
	}
	h, ok := hashOfUnit(name)
	return ok && a.owns(h)
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
	pending := map[string]bool{}
	for _, h := range a.tasks(ctx, false) {
		pending[h] = true
	}
	a.copyAll(ctx, pending)
	if len(a.tasks(ctx, true)) == 0 {
		return true // the lock is held until the process is gone
	}
	unlock()
	return false
}

func (a *agent) drainSignals(ctx context.Context, signals <-chan *dbus.Signal) {
	for {
		select {
		case s := <-signals:
			a.record(ctx, s)
		default:
			return
		}
	}
}

// tasks returns the hashes of this data directory's task units systemd
// has loaded (live only: those that may still print).
func (a *agent) tasks(ctx context.Context, live bool) []string {
	units, err := a.conn.ListUnitsByPatternsContext(ctx, nil, []string{"btl-*.service"})
	if err != nil {
		// Cannot tell: assume work remains.
		if live {
			return []string{""}
		}
		return nil
	}
	var out []string
	for _, u := range units {
		h, ok := hashOfUnit(u.Name)
		if !ok || !a.owns(h) {
			continue
		}
		if live && !unitLive(u.ActiveState, u.SubState) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// unitLive reports whether a unit in this state may still print.
func unitLive(active, sub string) bool {
	switch active {
	case "active", "activating", "deactivating", "reloading":
		return sub != "exited"
	}
	return false
}

// owns reports whether the task of hash belongs to this data directory:
// btl creates its cursor file when it starts it.
func (a *agent) owns(hash string) bool {
	_, err := os.Stat(filepath.Join(a.cfg.Dirs.Run, hash+".cursor"))
	return err == nil
}

func (a *agent) journal(hash string) *journal {
	logMax, ok := a.max[hash]
	if !ok && hash != "" {
		// The task's own BTL_LOG_MAX, from its unit's environment.
		logMax = a.cfg.LogMax
		if sp, err := a.conn.GetAllPropertiesContext(context.Background(), UnitName(hash)); err == nil && asString(sp["LoadState"]) == "loaded" {
			env, _ := sp["Environment"].([]string)
			if n, err := logfile.LogMax(env); err == nil {
				logMax = n
			}
			a.max[hash] = logMax
		}
	}
	return &journal{
		Journalctl: a.cfg.Journalctl,
		Args:       a.cfg.Args,
		UID:        a.uid,
		Ident:      syslogIdent(hash),
		LogFile:    a.cfg.Dirs.LogFile(hash),
		LogMax:     logMax,
		Cursor:     filepath.Join(a.cfg.Dirs.Run, hash+".cursor"),
		Lock:       filepath.Join(a.cfg.Dirs.Run, hash+".log.lock"),
	}
}

// copyAll copies the new entries of every pending task and clears the set.
func (a *agent) copyAll(ctx context.Context, pending map[string]bool) {
	if !a.cfg.Readable {
		clear(pending)
		return
	}
	for h := range pending {
		delete(pending, h)
		if h == "" || !a.owns(h) {
			continue
		}
		if err := a.journal(h).sync(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "btl log agent: %s: %v\n", h, err)
		}
	}
}

// follow runs one `journalctl --follow` over the user's entries from since
// on and sends the hash of every btl task entry to dirty, restarting
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
				if h, ok := strings.CutPrefix(e.Ident, "btl-"); ok && core.ValidHash(h) {
					select {
					case dirty <- h:
					default:
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

// record handles a signal: a new task unit gets a reference; a task unit
// that became inactive gets its exit record, written from its properties
// (still readable thanks to the reference), and loses the reference.
func (a *agent) record(ctx context.Context, s *dbus.Signal) {
	var name string
	switch s.Name {
	case "org.freedesktop.systemd1.Manager.UnitNew":
		if len(s.Body) > 0 {
			name, _ = s.Body[0].(string)
		}
		if h, ok := hashOfUnit(name); ok && a.owns(h) {
			a.ref(ctx, name)
		}
		return
	case "org.freedesktop.DBus.Properties.PropertiesChanged":
	default:
		return
	}
	if len(s.Body) < 2 {
		return
	}
	if iface, _ := s.Body[0].(string); iface != unitIface && iface != serviceIface {
		return
	}
	name, ok := unitOfPath(s.Path)
	if !ok {
		return
	}
	h, ok := hashOfUnit(name)
	if !ok || !a.owns(h) {
		return
	}
	changed, _ := s.Body[1].(map[string]dbus.Variant)
	if iface, _ := s.Body[0].(string); iface == serviceIface {
		a.serviceChanged(ctx, name, h, changed)
		return
	}
	state, _ := changed["ActiveState"].Value().(string)
	if state != "inactive" && state != "failed" {
		return
	}
	// A unit is inactive before it starts, too: only a main process that
	// ran and ended is recorded, and only then is the reference dropped.
	sp, err := a.conn.GetAllPropertiesContext(ctx, name)
	if err != nil || asInt(sp["ExecMainPID"]) == 0 || asInt(sp["ExecMainCode"]) == 0 {
		if asString(sp["LoadState"]) != "loaded" {
			delete(a.refs, name)
		}
		return
	}
	if err := writeExit(exitPath(a.cfg.Dirs.Run, h), asInt(sp["ExecMainPID"]), asInt(sp["ExecMainCode"]), asInt(sp["ExecMainStatus"]), asInt(sp["NRestarts"])); err != nil {
		// Keep the reference: the unit stays loaded, and its exit status
		// with it, where btl reads it instead of the record.
		fmt.Fprintf(os.Stderr, "btl log agent: %s: %v\n", name, err)
		return
	}
	if a.refs[name] {
		delete(a.refs, name)
		if err := a.conn.unrefUnit(ctx, name); err != nil {
			fmt.Fprintf(os.Stderr, "btl log agent: unref %s: %v\n", name, err)
		}
	}
}

// serviceChanged handles a change of a task unit's service properties
// while systemd restarts it (Restart=, NRestarts > 0): how its last run
// ended goes to the task's last-exit file, and each run gets its start
// marker in the log, after every line the earlier runs printed (copied up
// to the run's start) and before any of its own. The values are those the
// signal carries, of the moment of the change: a run that ended at once is
// marked too.
func (a *agent) serviceChanged(ctx context.Context, unit, h string, changed map[string]dbus.Variant) {
	v := map[string]int{}
	for _, k := range []string{"NRestarts", "ExecMainPID", "ExecMainCode", "ExecMainStatus", "ExecMainStartTimestamp"} {
		c, ok := changed[k]
		if !ok {
			return
		}
		v[k] = asInt(c.Value())
	}
	pid := v["ExecMainPID"]
	if pid == 0 {
		return
	}
	// A run is new when its main PID differs from the one of the last
	// change seen (NRestarts grows before the new run's PID is known);
	// the first run's marker is written by Start.
	seen, known := a.runs[unit]
	a.runs[unit] = pid
	newRun := known && seen != pid && v["NRestarts"] > 0
	if v["ExecMainCode"] != 0 && v["NRestarts"] > 0 {
		u := unitInfo{ExecMainCode: v["ExecMainCode"], ExecMainStatus: v["ExecMainStatus"]}
		if st, ok := u.exitStatus(); ok {
			_ = core.WriteFileAtomic(lastExitPath(a.cfg.Dirs.Run, h), []byte(st.String()+"\n"), 0o600)
		}
	}
	if !newRun {
		return
	}
	sp, err := a.conn.GetAllPropertiesContext(ctx, unit)
	if err != nil {
		return
	}
	at := time.Now()
	if us := v["ExecMainStartTimestamp"]; us > 0 {
		at = time.UnixMicro(int64(us))
	}
	j := a.journal(h)
	unlock, err := j.lock()
	if err != nil {
		return
	}
	defer unlock()
	if a.cfg.Readable && !strings.HasPrefix(asString(sp["StandardOutput"]), "append") {
		j.until = at.UnixMicro()
		_ = j.syncLocked(ctx)
	}
	_ = j.appendLocked([]byte(core.StartMarker(at, pid, asString(sp["Description"]))))
}

// ref takes a reference on a task unit, once.
func (a *agent) ref(ctx context.Context, unit string) {
	if a.conn.private || a.refs[unit] {
		return
	}
	if a.conn.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.RefUnit", 0, unit).Err == nil {
		a.refs[unit] = true
	}
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

// exitPath is the exit record of the task with the given hash: one file
// per hash, replaced by each instance.
func exitPath(run, hash string) string { return filepath.Join(run, hash+".exit") }

// writeExit records how the main process pid ended: "<pid> exited N" or
// "<pid> killed SIG", and on a second line "restarts N" when systemd
// restarted the task.
func writeExit(path string, pid, code, status, restarts int) error {
	if pid == 0 {
		return nil
	}
	var rec string
	switch code {
	case cldExited:
		rec = fmt.Sprintf("%d exited %d\n", pid, status)
	case cldKilled, cldDumped:
		rec = fmt.Sprintf("%d killed %d\n", pid, status)
	default:
		return nil
	}
	if restarts > 0 {
		rec += fmt.Sprintf("restarts %d\n", restarts)
	}
	return core.WriteFileAtomic(path, []byte(rec), 0o600)
}

// readExitRecord reads an exit record, and the restarts it notes; when
// pid is not 0, only a record about pid.
func readExitRecord(path string, pid int) (core.Status, int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return core.Status{}, 0, false
	}
	first, more, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	p, rest, ok := strings.Cut(first, " ")
	if !ok || pid != 0 && p != strconv.Itoa(pid) {
		return core.Status{}, 0, false
	}
	st, ok := parseExit(rest)
	n, _ := strconv.Atoi(strings.TrimPrefix(more, "restarts "))
	return st, n, ok
}

// lastExitPath holds how the run before the current one of a restarted
// task ended ("exited 1"), written by the log agent when systemd is about
// to restart it.
func lastExitPath(run, hash string) string { return filepath.Join(run, hash+".last") }

func readLastExit(run, hash string) string {
	b, _ := os.ReadFile(lastExitPath(run, hash))
	return strings.TrimSpace(string(b))
}

// ensureAgent starts the data directory's log agent unless it runs. It
// takes the agent lock first: an agent about to exit holds it until it is
// gone, so a running agent seen here stays for the task just started.
func (b *Backend) ensureAgent(ctx context.Context, logMax int64) error {
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

// ensureAgentLocked is ensureAgent for a caller that holds the agent lock.
func (b *Backend) ensureAgentLocked(ctx context.Context, logMax int64) error {
	unit := AgentUnitName(b.dirs.Run)
	if info, err := b.unitInfo(ctx, unit); err == nil && info.running() {
		// It runs (it holds no lock now, so it will see the new task).
		if p, err := proc.LookupProc(info.MainPID); err == nil && !p.Zombie {
			return nil
		}
	}
	exe, err := core.SelfExe(b.exe)
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
			return nil
		}
		if dbusErrorName(err) != "org.freedesktop.systemd1.UnitExists" || attempt >= 40 {
			return fmt.Errorf("systemd: start log agent %s: %w", unit, err)
		}
		// The unit exists: fine while its process lives (it holds no lock
		// now, so it will see the new task); otherwise it is on its way
		// out, and systemd needs a moment to forget it.
		info, ierr := b.unitInfo(ctx, unit)
		if ierr == nil && info.running() {
			if p, err := proc.LookupProc(info.MainPID); err == nil && !p.Zombie {
				return nil
			}
		}
		if ierr == nil && info.ActiveState == "failed" {
			_ = b.conn.ResetFailedUnitContext(ctx, unit)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// agentProps are the properties of the log agent unit. It restarts after
// a crash; a clean exit (no task left) ends it.
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
		prop("CollectMode", "inactive-or-failed"),
	}
}
