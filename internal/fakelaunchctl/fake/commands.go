//go:build linux

package fake

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// bootstrap implements "bootstrap <domain> </abs/path.plist>".
func (c *cli) bootstrap(args []string) int {
	const prefix = "Bootstrap failed: "
	if len(args) != 2 {
		return c.usage("bootstrap")
	}
	t, ok := parseTarget(args[0])
	if !ok || t.label != "" {
		fmt.Fprintln(c.err, "Unrecognized target specifier.")
		return c.usage("bootstrap")
	}
	if code := c.modifiable(t, prefix); code != 0 {
		return code
	}
	if t.kind == "gui" && c.session != sessionAqua {
		// Recent macOS refuses a gui/<uid> bootstrap from a session
		// that is not the GUI login (ssh, tmux detached from it).
		return c.fail(125, prefix+"125: Domain does not support specified action")
	}
	spec, err := loadPlist(args[1], c.uid, true)
	if err != nil {
		c.diag("bootstrap %s: %v", args[1], err)
		return c.fail(5, prefix+"5: Input/output error")
	}
	j := newJob(spec, args[1])
	j.SpawnAt = c.clk.now().Add(spawnDelay()).UnixNano()
	if !sessionAllowed(t, spec.sessionTypes) {
		c.diag("bootstrap %s: LimitLoadToSessionType %v: service cannot load in requested session", args[1], spec.sessionTypes)
		return c.fail(125, prefix+"125: Domain does not support specified action")
	}
	var why string
	if other := c.otherDomain(t); c.exists(other) && c.st.get(other, j.Label) != nil {
		why = "label " + j.Label + " loaded in " + other.domain()
	}
	if os.Getenv(envRefuse) == "1" {
		why = "refused (" + envRefuse + ")"
	}
	err = c.st.update(t, func(st *domainState) bool {
		if why != "" {
			return false
		}
		if until, ok := st.BusyUntil[j.Label]; ok {
			why = fmt.Sprintf("label %s busy after bootout for %v more", j.Label, time.Unix(0, until).Sub(c.clk.now()))
			return false
		}
		if cur := st.Jobs[j.Label]; cur != nil && cur.lingering() {
			why = "label " + j.Label + " still being removed"
			return false
		} else if cur != nil {
			why = "label " + j.Label + " already loaded"
			return false
		}
		st.Jobs[j.Label] = j
		return true
	})
	if err != nil {
		why = err.Error()
	}
	if why != "" {
		c.diag("bootstrap %s: %s", args[1], why)
		return c.fail(5, prefix+"5: Input/output error")
	}
	if j.State == stateSpawning {
		c.startMonitor(t, j)
	}
	return 0
}

// sessionAllowed reports whether a job limited to the session types
// types may load into domain t: user/<uid> takes only jobs that list
// Background (LimitLoadToSessionType defaults to Aqua) [S2 S3 S5]. What
// gui/<uid> does with a Background-only job is not shown by any source:
// the fake takes it.
func sessionAllowed(t target, types []string) bool {
	if t.kind != "user" {
		return true
	}
	for _, s := range types {
		if s == sessionBG {
			return true
		}
	}
	return false
}

// modifiable reports why bootstrap/bootout cannot change domain t: another
// user's domain (1) or a missing gui domain (125). It returns 0 if they can.
func (c *cli) modifiable(t target, prefix string) int {
	switch {
	case !c.own(t):
		return c.fail(1, prefix+"1: Operation not permitted")
	case !c.exists(t):
		return c.fail(125, prefix+"125: Domain does not support specified action")
	}
	return 0
}

// bootout implements "bootout <domain>/<label>" and "bootout <domain> <plist>".
func (c *cli) bootout(args []string) int {
	const prefix = "Boot-out failed: "
	if len(args) < 1 || len(args) > 2 {
		return c.usage("bootout")
	}
	t, ok := parseTarget(args[0])
	if !ok {
		fmt.Fprintln(c.err, "Unrecognized target specifier.")
		return c.usage("bootout")
	}
	if (len(args) == 2) == (t.label != "") {
		// A whole-domain bootout is real but never wanted in tests.
		return c.usage("bootout")
	}
	if code := c.modifiable(t, prefix); code != 0 {
		return code
	}
	if len(args) == 2 {
		spec, err := loadPlist(args[1], c.uid, false)
		if err != nil {
			c.diag("bootout %s: %v", args[1], err)
			return c.fail(5, prefix+"5: Input/output error")
		}
		t.label = spec.Label
	}
	j := c.st.get(t, t.label)
	if j == nil {
		return c.fail(113, prefix+"113: Could not find specified service")
	}
	if j.lingering() {
		if rand.IntN(2) == 0 {
			return c.fail(36, prefix+"36: Operation now in progress")
		}
		return c.fail(37, prefix+"37: Operation already in progress")
	}
	if code, _ := strconv.Atoi(os.Getenv(envBootoutFail)); code > 0 {
		// launchd refuses to boot the job out and keeps it [D1].
		msg := syscall.Errno(code).Error()
		return c.fail(code, fmt.Sprintf("%s%d: %s%s", prefix, code, strings.ToUpper(msg[:1]), msg[1:]))
	}
	if os.Getenv(envBootout36) == "1" {
		if err := c.startDetached(nil, hiddenTeardown, t.domain(), j.Label, j.Instance); err == nil {
			return c.fail(36, prefix+"36: Operation now in progress")
		}
	}
	c.teardown(t, j, 0)
	return 0
}

// teardown stops job j like launchd's bootout: SIGTERM to the main pid, up to
// ExitTimeOut for it to exit, then SIGKILL to the main pid only; the monitor
// SIGTERMs the rest of the group when the main process is gone. The job is
// removed no earlier than minDelay after the start.
func (c *cli) teardown(t target, j *job, minDelay time.Duration) {
	start := c.clk.now()
	// bootout is asynchronous: the label lingers, then goes; and for a
	// while after the bootout, bootstrap of it fails with 5 [B1].
	linger := func(st *domainState, cur *job) {
		cur.State = []string{stateSIGTERMed, stateExited}[rand.IntN(2)]
		until := c.clk.now().Add(lingerTime())
		cur.LingerUntil = max(until.UnixNano(), start.Add(minDelay).UnixNano())
		if busy := busyWindow(); busy > 0 {
			st.BusyUntil[j.Label] = start.Add(busy).UnixNano()
		}
	}
	// A job booted out before its program ran never runs it: marked as
	// going at once, under the lock its spawner checks before and after it
	// starts the program, it cannot begin to run unseen by this teardown.
	_ = c.st.update(t, func(st *domainState) bool {
		cur := st.Jobs[j.Label]
		if cur == nil || cur.Instance != j.Instance || cur.lingering() || (cur.State != stateSpawning && cur.State != stateSpawningSlow) {
			return false
		}
		linger(st, cur)
		return true
	})
	if c.signalJob(t, j.Label, j.Instance, unix.SIGTERM) {
		if !c.waitStopped(t, j, time.Duration(j.ExitTimeout)*time.Second) {
			c.signalJob(t, j.Label, j.Instance, unix.SIGKILL)
			c.waitStopped(t, j, 10*time.Second)
		}
	}
	c.clk.sleepUntil(start.Add(minDelay))
	_ = c.st.update(t, func(st *domainState) bool {
		cur := st.Jobs[j.Label]
		if cur == nil || cur.Instance != j.Instance || cur.lingering() {
			return false
		}
		linger(st, cur)
		return true
	})
}

// signalJob sends sig to the main pid of the job if it is running (instance
// "" matches any). Signals are sent under the domain lock: the monitor reaps
// only under it, so the pid cannot have been reused. It reports whether the
// job was running.
func (c *cli) signalJob(t target, label, instance string, sig syscall.Signal) bool {
	running := false
	_ = c.st.update(t, func(st *domainState) bool {
		j := st.Jobs[label]
		if j != nil && (instance == "" || j.Instance == instance) && j.State == stateRunning && j.PID > 0 {
			running = true
			_ = unix.Kill(j.PID, sig)
		}
		return false
	})
	return running
}

// lingerTime is how long a booted-out label lingers: FAKE_LAUNCHCTL_LINGER,
// or drawn in [lingerMin, lingerMax).
func lingerTime() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(envLinger)); err == nil {
		return d
	}
	return lingerMin + rand.N(lingerMax-lingerMin)
}

// busyWindow is how long, from a bootout, bootstrap of the label fails
// with 5: FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT, or drawn in [0, busyMax].
func busyWindow() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(envBusy)); err == nil {
		return d
	}
	return rand.N(busyMax + 1)
}

// busyMax bounds the time bootstrap of a label fails with 5 after its
// bootout: about 5 s on macOS 26 [B1], a little more here.
const busyMax = 6 * time.Second

// waitStopped polls until the job is no longer running (or was removed, or
// its monitor died) and reports whether that happened within d.
func (c *cli) waitStopped(t target, j *job, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		cur := c.st.get(t, j.Label)
		if cur == nil || cur.Instance != j.Instance || cur.State != stateRunning ||
			(cur.MonitorPID > 0 && unix.Kill(cur.MonitorPID, 0) == unix.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// print implements "print <domain>" and "print <domain>/<label>".
func (c *cli) print(args []string) int {
	if len(args) != 1 {
		return c.usage("print")
	}
	t, ok := parseTarget(args[0])
	if !ok {
		fmt.Fprintln(c.err, "Unrecognized target specifier.")
		return c.usage("print")
	}
	if code := c.lookupErr(t); code != 0 {
		return code
	}
	if t.label == "" {
		writeDomain(c.out, t, c.jobs(t))
		return 0
	}
	writeService(c.out, t, c.st.get(t, t.label))
	return 0
}

// lookupErr reports a missing domain (112) or service (113) the way print
// and kill do, and returns 0 when t exists.
func (c *cli) lookupErr(t target) int {
	if !c.exists(t) {
		if rand.IntN(2) == 0 {
			return c.fail(125, "Domain does not support specified action")
		}
		return c.fail(112, "Bad request.\nCould not find domain for "+t.desc())
	}
	if t.label != "" && c.st.get(t, t.label) == nil {
		return c.fail(113, "Bad request.\nCould not find service \""+t.label+"\" in domain for "+t.desc())
	}
	return 0
}

// kill implements "kill <signal> <domain>/<label>": main pid only.
func (c *cli) kill(args []string) int {
	if len(args) != 2 {
		return c.usage("kill")
	}
	sig, ok := parseSignal(args[0])
	if !ok {
		fmt.Fprintf(c.err, "Unrecognized signal: %s\n", args[0])
		return c.usage("kill")
	}
	t, ok := parseTarget(args[1])
	if !ok || t.label == "" {
		fmt.Fprintln(c.err, "Unrecognized target specifier.")
		return c.usage("kill")
	}
	if code := c.lookupErr(t); code != 0 {
		return code
	}
	if !c.signalJob(t, t.label, "", sig) {
		return c.fail(3, "Could not kill service \""+t.label+"\": 3: No such process")
	}
	return 0
}

// parseSignal accepts SIGTERM, TERM, term or 15.
func parseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), n > 0 && n < 65
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	return sig, sig != 0
}

// list implements "list" and "list <label>".
func (c *cli) list(args []string) int {
	switch len(args) {
	case 0:
		fmt.Fprint(c.out, "PID\tStatus\tLabel\n")
		for _, t := range c.callerDomains() {
			for _, j := range c.jobs(t) {
				pid := "-"
				if j.State == stateRunning && j.PID > 0 {
					pid = strconv.Itoa(j.PID)
				}
				fmt.Fprintf(c.out, "%s\t%d\t%s\n", pid, j.exitDesc(), j.Label)
			}
		}
		return 0
	case 1:
		for _, t := range c.callerDomains() {
			if j := c.st.get(t, args[0]); j != nil {
				writeListDict(c.out, t, j)
				return 0
			}
		}
		return c.fail(113, "Could not find service \""+args[0]+"\" in domain for port")
	}
	return c.usage("list")
}

// jobs returns copies of domain t's jobs sorted by label.
func (c *cli) jobs(t target) []*job {
	var out []*job
	_ = c.st.update(t, func(st *domainState) bool {
		for _, j := range st.Jobs {
			cp := *j
			out = append(out, &cp)
		}
		return false
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Label < out[b].Label })
	return out
}

// hidden runs the detached helpers: "__monitor|__teardown <domain> <label>
// <instance>".
func (c *cli) hidden(args []string) int {
	if len(args) != 4 {
		return exUsage
	}
	t, ok := parseTarget(args[1])
	if !ok {
		return exUsage
	}
	label, instance := args[2], args[3]
	if args[0] == hiddenMonitor {
		return c.monitor(t, label, instance)
	}
	if j := c.st.get(t, label); j != nil && j.Instance == instance {
		c.teardown(t, j, 200*time.Millisecond)
	}
	return 0
}
