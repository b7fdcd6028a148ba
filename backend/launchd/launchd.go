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
	"unicode/utf8"

	"btl/core"
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
	teardownTimeout  = 10 * time.Second // bootout until print answers 113
	bootstrapTimeout = 5 * time.Second  // retries of bootstrap on 5 or 37
	launchTimeout    = 15 * time.Second // bootstrap until the task runs
)

// Backend starts tasks as launchd agents.
type Backend struct {
	// Launchctl is the launchctl program; empty means "launchctl" from PATH.
	Launchctl string
	// Env, when not nil, is added to the environment launchctl runs with.
	Env []string
	// UID is the user whose launchd domain holds the agents.
	UID int
	// Dirs are btl's directories: plists go to Dirs.Data/launchd, launch
	// reports to Dirs.Run.
	Dirs core.Dirs
	// Exe is the launcher launchd runs for each task (see MaybeLaunch);
	// empty means the running executable.
	Exe string

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
// with launchctl in PATH.
func Available() bool {
	if runtime.GOOS != "darwin" {
		return false
	}
	_, err := exec.LookPath("launchctl")
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
	cmd := exec.CommandContext(ctx, cmp.Or(b.Launchctl, "launchctl"), args...)
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

// Domain returns the domain the agents go to: gui/<uid> when launchctl can
// print it, user/<uid> otherwise (no GUI login, as over ssh). The answer is
// probed once per Backend.
func (b *Backend) Domain(ctx context.Context) (string, error) {
	if b.domain != "" {
		return b.domain, nil
	}
	gui := "gui/" + strconv.Itoa(b.UID)
	r, err := b.launchctl(ctx, "print", gui)
	if err != nil {
		return "", err
	}
	b.domain = gui
	if r.code != 0 {
		b.domain = "user/" + strconv.Itoa(b.UID)
	}
	return b.domain, nil
}

// service returns the service target of the task: <domain>/<label>.
func (b *Backend) service(ctx context.Context, t core.Task) (string, error) {
	dom, err := b.Domain(ctx)
	if err != nil {
		return "", err
	}
	// The label comes from the hash, never from state.json's unit field:
	// an edited state must not lead btl to a job that is not its own.
	return dom + "/" + Label(t.Hash), nil
}

// Start writes the task's plist, removes any agent left with its label,
// bootstraps the new one and waits until the task's program runs.
func (b *Backend) Start(ctx context.Context, spec core.Spec) (core.Task, error) {
	if len(spec.Argv) == 0 {
		return core.Task{}, errors.New("launchd: no command given")
	}
	for i, a := range spec.Argv {
		if !utf8.ValidString(a) {
			return core.Task{}, fmt.Errorf("launchd: argument %d is not valid UTF-8, which a launchd property list cannot carry (use --backend fork)", i)
		}
	}
	// launchd spawns what it cannot run anyway and reports 78 later: check
	// first, and in the caller's terms.
	if _, err := core.LookPath(spec.Path, spec.Dir, spec.Env); err != nil {
		var ee *core.ExecError
		if errors.As(err, &ee) && len(spec.Argv) > 0 {
			ee.Name = spec.Argv[0]
		}
		return core.Task{}, err
	}
	exe, err := core.SelfExe(b.Exe)
	if err != nil {
		return core.Task{}, fmt.Errorf("launchd: %w", err)
	}
	dom, err := b.Domain(ctx)
	if err != nil {
		return core.Task{}, err
	}
	label := Label(spec.Hash)
	svc := dom + "/" + label
	report := reportPath(b.Dirs, spec.Token)
	if err := os.MkdirAll(b.Dirs.Run, 0o700); err != nil {
		return core.Task{}, fmt.Errorf("launchd: %w", err)
	}
	os.Remove(report)
	if err := b.bootout(ctx, svc); err != nil {
		return core.Task{}, fmt.Errorf("launchd: remove stale agent: %w", err)
	}
	path, err := b.writePlist(newAgent(spec, dom, exe, report))
	if err != nil {
		return core.Task{}, err
	}
	if err := b.bootstrap(ctx, dom, path, svc); err != nil {
		os.Remove(path)
		return core.Task{}, err
	}
	rep, err := b.awaitLaunch(ctx, svc, spec, report)
	os.Remove(report)
	if err != nil {
		b.bootout(context.WithoutCancel(ctx), svc)
		os.Remove(path)
		return core.Task{}, err
	}
	return core.Task{
		PID:       rep.PID,
		ProcStart: rep.Start,
		Unit:      label,
		Backend:   Name,
		LogDirect: true,
		StartedAt: time.Now().UTC(),
	}, nil
}

// bootstrap loads the plist at path into dom as service svc. launchd
// answers 5 (or 37) both while it still tears down an earlier agent with
// the same label and for good (label loaded elsewhere, plist refused), and
// says which only in its log. So 5 and 37 are retried only while the label
// lingers (print still shows it) or shortly after this process booted it
// out; otherwise the failure is final, with the hint where to read why.
func (b *Backend) bootstrap(ctx context.Context, dom, path, svc string) error {
	deadline := time.Now().Add(bootstrapTimeout)
	pause := 10 * time.Millisecond
	for {
		r, err := b.launchctl(ctx, "bootstrap", dom, path)
		if err == nil && r.code == 0 {
			os.Remove(b.bootoutMark(svc))
		}
		if err != nil || r.code == 0 {
			return err
		}
		if r.code != exitIO && r.code != exitAlready || time.Now().After(deadline) || !b.settling(ctx, svc) {
			return fmt.Errorf("%w (%s)", r.err(), logHint)
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(pause*2, 250*time.Millisecond)
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
// longer knows it.
func (b *Backend) bootout(ctx context.Context, svc string) error {
	r, err := b.launchctl(ctx, "bootout", svc)
	if err != nil {
		return err
	}
	switch r.code {
	case exitNoProcess, exitNoService:
		return nil
	case 0, exitInProgress, exitAlready:
		// 36 and 37: an earlier bootout is still tearing it down.
	default:
		return r.err()
	}
	// launchd may refuse to bootstrap the label again (5) for a few
	// seconds, even once print no longer shows it: remember when, for
	// this and later btl processes (best effort: without the mark a
	// replace fails sooner, it does not misbehave).
	core.WriteFileAtomic(b.bootoutMark(svc), nil, 0o600)
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
// not spawn (last exit code 78: EX_CONFIG), for example because its working
// directory or log directory vanished.
var ErrSpawn = errors.New("launchd could not spawn it (EX_CONFIG)")

// awaitLaunch waits for the launcher's report that the task's program is
// being executed. While it waits it asks launchd, now and then, whether the
// agent ended without running the launcher.
func (b *Backend) awaitLaunch(ctx context.Context, svc string, spec core.Spec, report string) (launchReport, error) {
	deadline := time.Now().Add(launchTimeout)
	nextPrint := time.Now().Add(100 * time.Millisecond)
	pause := time.Millisecond
	for {
		if rep, err := readReport(report); err == nil {
			return rep, nil
		}
		if time.Now().After(nextPrint) {
			st, err := b.inspect(ctx, svc)
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
			case !st.Alive() && st.State != core.Starting:
				return launchReport{}, fmt.Errorf("launchd: %s ended before it ran (%v); see %s", svc, st, spec.LogFile)
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
	svc, err := b.service(ctx, t)
	if err != nil {
		return err
	}
	leader := t.Proc()
	if !leader.Verify() {
		// An adopted task, or a recorded PID that is gone: ask launchd.
		if st, err := b.inspect(ctx, svc); err == nil && st.Alive() {
			if info, err := core.LookupProc(st.PID); err == nil {
				leader = core.Proc{PID: st.PID, Start: info.Start}
			}
		}
	}
	if err := core.StopTree(leader, t.Token, grace); err != nil {
		return err // survivors: the agent stays loaded, as the task runs
	}
	if err := b.bootout(ctx, svc); err != nil {
		return err
	}
	if t.Hash != "" {
		os.Remove(b.plistPath(t.Hash))
	}
	return nil
}

// Release boots out the agent of a task that has ended (launchd keeps it
// loaded until then) and removes its plist.
func (b *Backend) Release(ctx context.Context, t core.Task) error {
	svc, err := b.service(ctx, t)
	if err != nil {
		return err
	}
	if st, err := b.inspect(ctx, svc); err == nil && st.Alive() {
		return nil
	}
	if err := b.bootout(ctx, svc); err != nil {
		return err
	}
	if t.Hash != "" {
		os.Remove(b.plistPath(t.Hash))
	}
	return nil
}

// Inspect asks launchd for the task's agent: running with its PID, exited
// with its code, killed by a signal, or gone when it is not loaded.
func (b *Backend) Inspect(ctx context.Context, t core.Task) (core.Status, error) {
	svc, err := b.service(ctx, t)
	if err != nil {
		return core.Status{}, err
	}
	return b.inspect(ctx, svc)
}

func (b *Backend) inspect(ctx context.Context, svc string) (core.Status, error) {
	r, err := b.launchctl(ctx, "print", svc)
	if err != nil {
		return core.Status{}, err
	}
	switch r.code {
	case 0:
		return parsePrint(r.stdout), nil
	case exitNoService, exitNoDomain, exitNoSupport:
		return core.Status{State: core.Gone}, nil
	}
	return core.Status{}, r.err()
}

// List returns the running agents btl created, as launchctl list shows
// them, with the command, working directory, log file and instance token
// read back from their plists. Agents that have exited are left out: btl
// clean must be able to forget them.
func (b *Backend) List(ctx context.Context) ([]core.Task, error) {
	r, err := b.launchctl(ctx, "list")
	if err != nil {
		return nil, err
	}
	if r.code != 0 {
		return nil, r.err()
	}
	var tasks []core.Task
	for _, row := range parseList(r.stdout) {
		hash, ok := strings.CutPrefix(row.label, LabelPrefix)
		if !ok || !core.ValidHash(hash) || row.pid <= 0 {
			continue
		}
		a, mtime, err := b.readPlist(hash)
		if err != nil || a.Label != row.label {
			continue
		}
		t := a.task(hash)
		t.PID, t.StartedAt = row.pid, mtime.UTC()
		if info, err := core.LookupProc(row.pid); err == nil {
			t.ProcStart = info.Start
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

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
