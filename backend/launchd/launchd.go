// Package launchd runs btl tasks as ad-hoc per-user launchd agents on
// macOS: each task is a plist in btl's data directory, bootstrapped into
// the user's gui/<uid> domain (user/<uid> when there is no GUI login, as
// over ssh) with launchctl, and seen by `launchctl print` and `launchctl
// list`. The agents do not come back at login.
//
// The package only runs launchctl and writes files, so it builds and is
// tested on Linux against a faithful fake launchctl.
package launchd

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"btl/core"
	"btl/internal/proc"
	"btl/internal/reexec"
	"btl/internal/regular"
)

// Name is the backend's name in state.json and on the command line.
const Name = "launchd"

// LabelPrefix starts the label of every agent btl creates; the rest of the
// label is the task's hash.
const LabelPrefix = "btl."

// Exit codes of launchctl the backend acts on (see the launchd notes).
const (
	exitNoProcess  = 3   // bootout: not loaded (older macOS)
	exitIO         = 5   // bootstrap: label still loaded or being torn down
	exitInProgress = 36  // bootout: teardown continues in the background
	exitAlready    = 37  // bootstrap/bootout: operation already in progress
	exitConfig     = 78  // last exit code: launchd could not spawn the program
	exitNoDomain   = 112 // print: domain does not exist
	exitNoService  = 113 // print, bootout: service not loaded
	exitNoSupport  = 125 // domain does not support the action (gui/ from ssh)
)

// logHint tells where launchd gives the reason it only summarises as an
// exit code.
const logHint = `launchd logs why: log show --last 5m --predicate 'process == "launchd"'`

// Bounds of the waits on launchd. Polling starts fast so that the usual
// case costs a few milliseconds.
const (
	teardownTimeout = 10 * time.Second // bootout until print answers 113
	// bootstrapTimeout bounds the retries of bootstrap on 5 or 37 after
	// a bootout of the label: macOS 26 answers 5 for about 5 s then.
	bootstrapTimeout = 10 * time.Second
	// busyNotice is how long a bootstrap waits before it says so.
	busyNotice    = time.Second
	launchTimeout = 15 * time.Second // bootstrap until the task runs
	// idleTimeout bounds how long a start waits for an agent that print
	// shows not running and never run, and not being spawned either.
	idleTimeout  = 3 * time.Second
	startTimeout = time.Minute // a whole start, once under way
)

// Backend starts tasks as launchd agents.
type Backend struct {
	// Launchctl is the launchctl program; empty means /bin/launchctl on
	// macOS ("launchctl" from PATH elsewhere, for tests).
	Launchctl string
	// Env, when not nil, is added to the environment launchctl runs with.
	Env []string
	// UID is the user whose launchd domain holds the agents.
	UID int
	// Dirs are btl's directories: plists go to Dirs.Data/launchd, launch
	// reports to Dirs.Run.
	Dirs core.Dirs
	// Exe is the launcher launchd runs for each task (see launch);
	// empty means the running executable.
	Exe string
	// Progress, when set, is told (once, in a sentence without a final
	// newline) when a start waits for launchd to release the task's label.
	Progress func(msg string)

	domain string // gui/<uid> or user/<uid>, once probed
}

var (
	_ core.Backend  = (*Backend)(nil)
	_ core.Releaser = (*Backend)(nil)
)

// New returns a launchd backend for the calling user that keeps its files
// in dirs.
func New(dirs core.Dirs) *Backend { return &Backend{UID: os.Getuid(), Dirs: dirs} }

// Name returns "launchd".
func (b *Backend) Name() string { return Name }

// Available reports whether tasks can run as launchd agents here: on macOS,
// with /bin/launchctl.
func Available() bool {
	if runtime.GOOS != "darwin" {
		return false
	}
	_, err := exec.LookPath(defaultLaunchctl)
	return err == nil
}

// Label returns the launchd label of the task with the given hash.
func Label(hash string) string { return LabelPrefix + hash }

// result is the outcome of one launchctl call.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

// err describes a call that ended with an exit code the caller did not
// expect.
func (r result) err() error {
	msg := strings.TrimSpace(r.stderr)
	if msg == "" {
		msg = strings.TrimSpace(r.stdout)
	}
	return fmt.Errorf("launchd: launchctl %s: exit %d: %s", strings.Join(r.args, " "), r.code, msg)
}

// launchctl runs launchctl with args. An error means it could not be run
// at all; its exit code is in the result.
func (b *Backend) launchctl(ctx context.Context, args ...string) (result, error) {
	cmd := exec.CommandContext(ctx, cmp.Or(b.Launchctl, defaultLaunchctl), args...)
	if b.Env != nil {
		cmd.Env = append(os.Environ(), b.Env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("launchd: run launchctl %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

// Domain returns the domain new agents go to, from the caller's session
// (`launchctl managername`): gui/<uid> in the GUI login (Aqua), user/<uid>
// otherwise (ssh, a tmux server started outside the GUI login). Where
// managername does not answer, gui/<uid> when launchctl can print it. The
// answer is asked once per Backend.
func (b *Backend) Domain(ctx context.Context) (string, error) {
	if b.domain != "" {
		return b.domain, nil
	}
	gui, user := b.domains()
	r, err := b.launchctl(ctx, "managername")
	if err != nil {
		return "", err
	}
	if r.code == 0 {
		b.domain = user
		if strings.TrimSpace(r.stdout) == "Aqua" {
			b.domain = gui
		}
		return b.domain, nil
	}
	if r, err = b.launchctl(ctx, "print", gui); err != nil {
		return "", err
	}
	b.domain = gui
	if r.code != 0 {
		b.domain = user
	}
	return b.domain, nil
}

// domains returns the user's two domains: gui/<uid> and user/<uid>.
func (b *Backend) domains() (gui, user string) {
	return "gui/" + strconv.Itoa(b.UID), "user/" + strconv.Itoa(b.UID)
}

// targets returns the service targets where the task's agent may be
// loaded: the one recorded in the task's Unit when it is one of the
// user's domains, else both (the caller's first). The label always comes
// from the hash, never from state.json: an edited state must not lead btl
// to a job that is not its own.
func (b *Backend) targets(ctx context.Context, t core.Task) ([]string, error) {
	label := Label(t.Hash)
	gui, user := b.domains()
	if dom, ok := strings.CutSuffix(t.Unit, "/"+label); ok && (dom == gui || dom == user) {
		return []string{t.Unit}, nil
	}
	first, err := b.Domain(ctx)
	if err != nil {
		return nil, err
	}
	second := gui
	if first == gui {
		second = user
	}
	return []string{first + "/" + label, second + "/" + label}, nil
}

// find returns the first of the task's targets where launchd knows its
// agent, with its status; when none does, the first target, gone.
func (b *Backend) find(ctx context.Context, t core.Task) (string, core.Status, error) {
	svcs, err := b.targets(ctx, t)
	if err != nil {
		return "", core.Status{}, err
	}
	for _, svc := range svcs {
		st, err := b.inspect(ctx, svc)
		if err != nil || st.State != core.Gone {
			return svc, st, err
		}
	}
	return svcs[0], core.Status{State: core.Gone}, nil
}

// Start writes the task's plist, removes any agent left with its label,
// bootstraps the new one and waits until the task's program runs. A task
// launchd refuses for good (a protected folder, ErrRefused, ErrSpawn) is a
// *core.Refusal, which auto mode starts with another backend.
func (b *Backend) Start(ctx context.Context, spec core.Spec) (core.Started, error) {
	t, err := b.start(ctx, spec)
	return t, refusal(err)
}

// start is Start, with launchd's own errors.
func (b *Backend) start(ctx context.Context, spec core.Spec) (core.Started, error) {
	if err := core.CheckNativeStart(Name, spec); err != nil {
		return core.Started{}, err
	}
	if err := b.Refuse(spec); err != nil {
		return core.Started{}, err
	}
	exe, err := reexec.SelfExe(b.Exe)
	if err != nil {
		return core.Started{}, fmt.Errorf("launchd: %w", err)
	}
	dom, err := b.Domain(ctx)
	if err != nil {
		return core.Started{}, fmt.Errorf("%w (%w)", err, ErrRefused)
	}
	label := Label(spec.Hash)
	report := reportPath(b.Dirs, spec.Token)
	if err := os.MkdirAll(b.Dirs.Run, 0o700); err != nil {
		return core.Started{}, fmt.Errorf("launchd: %w", err)
	}
	_ = os.Remove(report)
	if spec.Restart.Mode == core.RestartAlways {
		// launchd keeps the task alive while this file exists.
		if err := regular.WriteFileAtomic(restartFilesOf(report).keep, nil, 0o600); err != nil {
			return core.Started{}, fmt.Errorf("launchd: %w", err)
		}
	}
	// From here on a signal to btl (SIGINT, SIGTERM) does not cut the
	// start short: a launchctl killed half-way may leave launchd running
	// the task while btl reports a failure and forgets it. The start
	// completes, or is rolled back, and the caller records it; each wait
	// below is bounded, and so is the whole.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	// A label loaded in either domain blocks the bootstrap in both.
	gui, user := b.domains()
	for _, d := range []string{gui, user} {
		if err := b.bootout(ctx, d+"/"+label); err != nil {
			return core.Started{}, fmt.Errorf("launchd: remove stale agent: %w (%w)", unprefixed{err}, ErrRefused)
		}
	}
	svc, path, err := b.load(ctx, spec, dom, exe, report, probeLimits(ctx))
	if err != nil {
		return core.Started{}, err
	}
	rep, err := b.awaitLaunch(ctx, svc, spec, report)
	_ = os.Remove(report)
	if err != nil {
		if berr := b.bootout(context.WithoutCancel(ctx), svc); berr != nil {
			// The agent may still run, and btl keeps no record of it.
			err = fmt.Errorf("%w; and removing its agent %s failed: %w", err, svc, berr)
		}
		_ = os.Remove(path)
		return core.Started{}, err
	}
	return core.Started{
		PID:       rep.PID,
		ProcStart: rep.Start,
		Unit:      svc,
		LogDirect: true,
		StartedAt: time.Now().UTC(),
	}, nil
}

// load writes the task's plist for domain dom and bootstraps it there. When
// launchd refuses gui/<uid> for the caller's session (125, as from ssh on
// recent macOS), it loads it into user/<uid> instead. It returns the
// service target and the plist's path.
func (b *Backend) load(ctx context.Context, spec core.Spec, dom, exe, report string, lim callerLimits) (svc, path string, err error) {
	for {
		a := newAgent(spec, dom, exe, report, lim)
		if ctl := b.launchctlRef(); ctl != "" && spec.Restart.Enabled() {
			a.EnvironmentVariables[LaunchctlEnv] = ctl
		}
		path, err := b.writePlist(a)
		if err != nil {
			return "", "", err
		}
		svc := dom + "/" + Label(spec.Hash)
		err = b.bootstrap(ctx, dom, path, svc)
		if err == nil {
			return svc, path, nil
		}
		_ = os.Remove(path)
		gui, user := b.domains()
		if !errors.Is(err, errNoSupport) || dom != gui {
			return "", "", err
		}
		dom = user
		b.domain = user
	}
}

// errNoSupport is wrapped by a bootstrap's error when launchd answered 125:
// the domain does not support it (gui/<uid> outside the GUI login).
var errNoSupport = errors.New("domain does not support the action")

// bootstrap loads the plist at path into dom as service svc. launchd
// answers 5 (or 37) both while it still tears down an earlier agent with
// the same label and for good (label loaded elsewhere, plist refused), and
// says which only in its log. So 5 and 37 are retried only while the label
// lingers (print still shows it) or shortly after this process booted it
// out; otherwise the failure is final, with the hint where to read why.
func (b *Backend) bootstrap(ctx context.Context, dom, path, svc string) error {
	start := time.Now()
	deadline := start.Add(bootstrapTimeout)
	pause := 10 * time.Millisecond
	told := false
	for {
		r, err := b.launchctl(ctx, "bootstrap", dom, path)
		if err == nil && r.code == 0 {
			_ = os.Remove(b.bootoutMark(svc))
		}
		if err != nil || r.code == 0 {
			return err
		}
		if r.code == exitNoSupport {
			return fmt.Errorf("%w (%w; %w)", r.err(), errNoSupport, ErrRefused)
		}
		if r.code != exitIO && r.code != exitAlready || time.Now().After(deadline) || !b.settling(ctx, svc) {
			return fmt.Errorf("%w (%s; %w)", r.err(), logHint, ErrRefused)
		}
		if !told && time.Since(start) >= busyNotice && b.Progress != nil {
			told = true
			b.Progress("Waiting for launchd to release " + svc + " (macOS refuses a label for a few seconds after it was stopped)")
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(pause*2, 100*time.Millisecond)
	}
}

// settling reports whether launchd may still be releasing the label of
// svc: print shows it (a bootout lingers), or btl booted it out less than
// bootstrapTimeout ago.
func (b *Backend) settling(ctx context.Context, svc string) bool {
	if fi, err := os.Stat(b.bootoutMark(svc)); err == nil && time.Since(fi.ModTime()) < bootstrapTimeout {
		return true
	}
	r, err := b.launchctl(ctx, "print", svc)
	return err == nil && r.code == 0
}

// bootoutMark is the file whose modification time is btl's last bootout
// of the service svc.
func (b *Backend) bootoutMark(svc string) string {
	return filepath.Join(b.Dirs.Run, strings.ReplaceAll(svc, "/", "_")+".bootout")
}

// bootout removes the agent svc, if loaded, and returns once launchd no
// longer knows it. launchctl answers 113 (3 on older macOS) for a label
// that is not loaded; 112 and 125 may also mean that the domain refused
// the call, so they are confirmed with print. Any other answer, or a label
// that does not go, is an error that says what launchctl answered.
func (b *Backend) bootout(ctx context.Context, svc string) error {
	r, err := b.launchctl(ctx, "bootout", svc)
	if err != nil {
		return err
	}
	switch r.code {
	case exitNoProcess, exitNoService:
		return nil // not loaded
	case exitNoDomain, exitNoSupport:
		p, err := b.launchctl(ctx, "print", svc)
		if err != nil {
			return err
		}
		switch p.code {
		case exitNoService, exitNoDomain, exitNoSupport:
			return nil // no such service, or no such domain for this session
		case 0:
			return fmt.Errorf("%w, and print still shows it loaded", r.err())
		}
		return fmt.Errorf("%w; %w", r.err(), p.err())
	case 0, exitInProgress, exitAlready:
		// 36 and 37: an earlier bootout is still tearing it down.
	default:
		return r.err()
	}
	// launchd may refuse to bootstrap the label again (5) for a few
	// seconds, even once print no longer shows it: remember when, for
	// this and later btl processes (best effort: without the mark a
	// replace fails sooner, it does not misbehave).
	_ = regular.WriteFileAtomic(b.bootoutMark(svc), nil, 0o600)
	deadline := time.Now().Add(teardownTimeout)
	pause := 2 * time.Millisecond
	for {
		r, err := b.launchctl(ctx, "print", svc)
		if err != nil {
			return err
		}
		if r.code == exitNoService || r.code == exitNoDomain || r.code == exitNoSupport {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("launchd: %s still loaded %v after bootout", svc, teardownTimeout)
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(pause*2, 50*time.Millisecond)
	}
}

// ErrSpawn is wrapped by the *core.ExecError of a task that launchd could
// not spawn (last exit code 78: EX_CONFIG, or only a "last exit reason"),
// for example because its working directory or log directory vanished.
var ErrSpawn = errors.New("launchd could not spawn it (EX_CONFIG)")

// awaitLaunch waits for the launcher's report that the task's program is
// being executed. While it waits it asks launchd, now and then, whether the
// agent ended without running the launcher, and gives up on an agent that
// launchd shows loaded but neither running nor being spawned for longer
// than idleTimeout.
func (b *Backend) awaitLaunch(ctx context.Context, svc string, spec core.Spec, report string) (launchReport, error) {
	deadline := time.Now().Add(launchTimeout)
	nextPrint := time.Now().Add(100 * time.Millisecond)
	var idleSince time.Time
	pause := time.Millisecond
	for {
		if rep, err := readReport(report); err == nil {
			return rep, nil
		}
		if time.Now().After(nextPrint) {
			st, dump, err := b.inspectDump(ctx, svc)
			if err != nil {
				return launchReport{}, err
			}
			if rep, err := readReport(report); err == nil {
				return rep, nil
			}
			switch {
			case st.State == core.Gone:
				return launchReport{}, fmt.Errorf("launchd: %s was removed before it ran", svc)
			case st.State == core.Exited && st.Code == exitConfig:
				return launchReport{}, &core.ExecError{Name: spec.Argv[0], Err: ErrSpawn}
			case st.State == core.Failed:
				return launchReport{}, &core.ExecError{Name: spec.Argv[0], Err: fmt.Errorf("%w (launchctl print: %s)", ErrSpawn, exitDetail(dump))}
			case !st.Alive() && st.State != core.Starting:
				return launchReport{}, fmt.Errorf("launchd: %s ended before it ran (%v); see %s", svc, st, spec.LogFile)
			case idle(dump):
				if idleSince.IsZero() {
					idleSince = time.Now()
				} else if time.Since(idleSince) > idleTimeout {
					return launchReport{}, fmt.Errorf("launchd: %s is loaded but launchd does not run it (launchctl print: state = not running, never exited) (%w)", svc, ErrRefused)
				}
			default:
				idleSince = time.Time{}
			}
			nextPrint = time.Now().Add(200 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			return launchReport{}, fmt.Errorf("launchd: %s did not start within %v", svc, launchTimeout)
		}
		if err := sleep(ctx, pause); err != nil {
			return launchReport{}, err
		}
		pause = min(pause*2, 20*time.Millisecond)
	}
}

// Stop ends the task's whole tree (its process group and every process
// carrying its instance token), then boots the agent out and removes its
// plist. launchd alone would leave children that ignore SIGTERM or left the
// group alive.
func (b *Backend) Stop(ctx context.Context, t core.Task, grace time.Duration) error {
	svcs, err := b.targets(ctx, t)
	if err != nil {
		return err
	}
	if t.Token != "" {
		report := reportPath(b.Dirs, t.Token)
		if t.Restart != "" {
			// No launch runs the program from now on, and an always task
			// is no longer kept alive: launchd cannot restart what is
			// stopped.
			f := restartFilesOf(report)
			_ = regular.WriteFileAtomic(f.stop, nil, 0o600) // best effort: the bootout below unloads the job anyway
			_ = os.Remove(f.keep)
		}
		defer removeRestartFiles(report) // and the record of runs
	}
	leader := t.Proc()
	if !leader.Verify() {
		// An adopted task, or a recorded PID that is gone: ask launchd.
		if _, st, err := b.find(ctx, t); err == nil && st.Alive() {
			if info, err := proc.LookupProc(st.PID); err == nil {
				leader = core.Proc{PID: st.PID, Start: info.Start}
			}
		}
	}
	killed, err := proc.StopTree(leader, t.Token, t.StopPolicy().Signal, grace)
	if killed {
		core.NoteKilled(ctx)
	}
	if err != nil {
		return err // survivors: the agent stays loaded, as the task runs
	}
	// The record of runs, which names the log pump, goes with the stop:
	// the pump writes the task's last output first.
	_ = b.SyncLog(ctx, t)
	return b.unload(ctx, t, svcs)
}

// unload boots out the agent at each of svcs and removes the task's plist.
func (b *Backend) unload(ctx context.Context, t core.Task, svcs []string) error {
	for _, svc := range svcs {
		if err := b.bootout(ctx, svc); err != nil {
			return err
		}
	}
	if t.Hash != "" {
		_ = os.Remove(b.plistPath(t.Hash))
	}
	return nil
}

// Release boots out the agent of a task that has ended (launchd keeps it
// loaded until then) and removes its plist.
func (b *Backend) Release(ctx context.Context, t core.Task) error {
	svcs, err := b.targets(ctx, t)
	if err != nil {
		return err
	}
	if _, st, err := b.find(ctx, t); err != nil || st.Alive() {
		return err // still running (or unknown): keep its plist
	}
	if t.Token != "" {
		removeRestartFiles(reportPath(b.Dirs, t.Token))
	}
	return b.unload(ctx, t, svcs)
}

// Inspect asks launchd for the task's agent, in the domain recorded with
// it (both for a task that has none): running with its PID, exited with its
// code, killed by a signal, or gone when it is loaded in neither.
func (b *Backend) Inspect(ctx context.Context, t core.Task) (core.Status, error) {
	_, st, err := b.find(ctx, t)
	if err != nil {
		return st, err
	}
	return b.withRestarts(t, st), nil
}

func (b *Backend) inspect(ctx context.Context, svc string) (core.Status, error) {
	st, _, err := b.inspectDump(ctx, svc)
	return st, err
}

// inspectDump is inspect that also returns the print dump ("" when gone).
func (b *Backend) inspectDump(ctx context.Context, svc string) (core.Status, string, error) {
	r, err := b.launchctl(ctx, "print", svc)
	if err != nil {
		return core.Status{}, "", err
	}
	switch r.code {
	case 0:
		return parsePrint(r.stdout), r.stdout, nil
	case exitNoService, exitNoDomain, exitNoSupport:
		return core.Status{State: core.Gone}, "", nil
	}
	return core.Status{}, "", r.err()
}

// List returns the running agents btl created, with the command, working
// directory, log file and instance token read back from their plists. It
// walks btl's own plists and asks for each label in both domains: what
// `launchctl list` shows depends on the caller's session. Agents that have
// exited are left out: btl clean must be able to forget them.
func (b *Backend) List(ctx context.Context) ([]core.Task, error) {
	ents, err := os.ReadDir(filepath.Dir(b.plistPath("x")))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("launchd: %w", err)
	}
	gui, user := b.domains()
	var tasks []core.Task
	for _, e := range ents {
		hash, ok := strings.CutSuffix(e.Name(), ".plist")
		if !ok || !core.ValidHash(hash) {
			continue
		}
		a, mtime, err := b.readPlist(hash)
		if err != nil || a.Label != Label(hash) {
			continue
		}
		for _, dom := range []string{gui, user} {
			svc := dom + "/" + a.Label
			st, err := b.inspect(ctx, svc)
			if err != nil {
				return nil, err
			}
			if st.State != core.Running {
				continue
			}
			t := a.task(hash)
			t.PID, t.StartedAt, t.Unit = st.PID, mtime.UTC(), svc
			if info, err := proc.LookupProc(st.PID); err == nil {
				t.ProcStart = info.Start
			}
			tasks = append(tasks, t)
			break
		}
	}
	return tasks, nil
}

// unprefixed is err without the "launchd: " its message starts with, for
// an error wrapped in another that says it.
type unprefixed struct{ err error }

func (u unprefixed) Error() string { return strings.TrimPrefix(u.err.Error(), "launchd: ") }
func (u unprefixed) Unwrap() error { return u.err }

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
