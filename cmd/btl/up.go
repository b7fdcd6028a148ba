package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
	"btl/internal/logread"
	"btl/internal/project"
)

// upOptions are btl up's flags.
type upOptions struct {
	file     string
	force    bool
	wait     bool
	timeout  time.Duration
	follow   bool
	portBase int
}

func newUpCmd(e *env) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up [entry...]",
		Short: "Start a project's processes from its Procfile or process-compose file",
		Long: `Start the processes of the project in this directory, each as an ordinary btl
task, from the first of Procfile.dev, Procfile, process-compose.yaml and
process-compose.yml (or -f FILE). With entries named, those and what they
depend on.

Each entry runs in its working directory (the file's directory unless the
file says) with the caller's environment, then .env from the project
directory, then the file's own variables (the later wins); in a Procfile,
PORT is 5000 + 100 × the entry's index (--port-base). An entry is named
after itself, or <project>.<entry> when another task already has that name.
Typing its command by hand in its directory (btl npm run dev) is the same
task.

Entries start in dependency order, each once what it depends on meets its
condition (process_started, process_healthy: its readiness probe holds,
process_completed_successfully: it exited 0); independent entries do not
wait for each other. An entry that fails its condition (it ends, or is not
ready within --wait-timeout) keeps the entries that depend on it from
starting: btl up prints the end of its log and exits 1 (124 for a timeout).

Run again, btl up replaces only the entries whose definition changed
(command, directory, environment, dependencies, restart policy) and starts
the ones that are not running; --force replaces all. btl down stops them.`,
		Example:           "  btl up\n  btl up --wait\n  btl up web\n  btl up -f process-compose.yaml --follow\n  btl down",
		ValidArgsFunction: completeEntries(&o.file),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.timeout <= 0 {
				return usageError("--wait-timeout takes a duration above 0 (such as 30s), not %v", o.timeout)
			}
			if o.portBase < 1 || o.portBase > 65535 {
				return usageError("--port-base takes a TCP port from 1 to 65535, not %d", o.portBase)
			}
			return e.up(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "the project file (default: the first of "+strings.Join(project.Names, ", ")+" here)")
	f.BoolVar(&o.force, "force", false, "replace every entry, changed or not")
	f.BoolVar(&o.wait, "wait", false, "return once every entry with a readiness probe is ready")
	f.DurationVar(&o.timeout, "wait-timeout", 60*time.Second, "how long an entry may take to meet the condition others wait for")
	f.BoolVar(&o.follow, "follow", false, "then follow the project's logs (Ctrl-C detaches; the tasks keep running)")
	f.IntVar(&o.portBase, "port-base", 5000, "Procfile: PORT of the first entry (each next one +100)")
	return cmd
}

func newDownCmd(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "down [entry...]",
		Short: "Stop a project's processes, keeping them listed",
		Long: `Stop the tasks btl up started for the project in this directory (or -f FILE's),
dependents before what they depend on, as btl stop does: each is kept,
listed as stopped with its name; btl up or btl restart runs it again, btl
kill or btl clean forgets it. With entries named, only those.`,
		Example:           "  btl down\n  btl down web",
		ValidArgsFunction: completeEntries(&file),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.down(cmd.Context(), file, args)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the project file (default: the first of "+strings.Join(project.Names, ", ")+" here)")
	return cmd
}

// completeEntries completes the entries of the project file (-f's, else
// the directory's) not given yet.
func completeEntries(file *string) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		_, f, err := loadProject(*file, 5000)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, en := range f.Entries {
			if !slices.Contains(args, en.Name) {
				out = append(out, en.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// loadProject finds and parses the project file: -f's, else the first of
// project.Names in the current directory. It returns the project's
// directory (real path). A bad file is a usage error.
func loadProject(file string, portBase int) (string, *project.File, error) {
	shown := file
	if file == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return "", nil, fmt.Errorf("current directory: %w", err)
		}
		if file, err = project.Find(cwd); err != nil {
			return "", nil, &exitError{code: 2, err: err}
		}
		shown = filepath.Base(file)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", nil, err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", nil, &exitError{code: 2, err: fmt.Errorf("project file: %w", err)}
	}
	// Errors and messages name the file as given, or by its name.
	f, err := project.Load(abs, shown, portBase)
	if err != nil {
		return dir, nil, &exitError{code: 2, err: err}
	}
	return dir, f, nil
}

// upTask is one entry on its way up.
type upTask struct {
	entry *project.Entry
	spec  core.Spec
	name  string
	old   *core.View // the entry's recorded task, if any
	env   []string   // the entry's environment, for exec probes

	task    *core.Task // once started (or left running)
	since   time.Time  // when it was started (or looked at, if left running)
	probe   *prober
	ready   bool         // its readiness probe held
	ended   *core.Status // how it ended, once seen
	failed  error        // it cannot meet a condition; its dependents do not start
	skipped bool         // not started: a dependency failed
}

// up starts the project's entries (see newUpCmd).
func (e *env) up(ctx context.Context, o upOptions, names []string) error {
	dir, f, err := loadProject(o.file, o.portBase)
	if err != nil {
		return err
	}
	order, err := f.Order(names)
	if err != nil {
		return usageError("%v", err)
	}
	if len(f.Ignored) > 0 {
		fmt.Fprintf(e.stderr, "Warning: %s: not supported, ignored: %s\n", f.Path, strings.Join(f.Ignored, ", "))
	}
	dotenv, err := project.LoadDotEnv(dir)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	views, err := e.mgr.List(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "[btl] Project %s: %s, %s\n", printable(dir), filepath.Base(f.Path), entries(len(order)))

	// Everything is checked before anything starts: directories, programs.
	tasks := map[string]*upTask{}
	defer func() {
		// A log probe that never matched still has its log open.
		for _, ut := range tasks {
			if ut.probe != nil && ut.probe.log != nil {
				_ = ut.probe.log.Close()
			}
		}
	}()
	caller := os.Environ()
	if _, set := os.LookupEnv("PYTHONUNBUFFERED"); !set && !e.noUnbuffer {
		caller = append(caller, "PYTHONUNBUFFERED=1")
	}
	for _, n := range order {
		ent := f.Entry(n)
		ut := &upTask{entry: ent, old: recorded(views, dir, n)}
		wd := dir
		if ent.Dir != "" {
			wd = ent.Dir
			if !filepath.IsAbs(wd) {
				wd = filepath.Join(dir, wd)
			}
		}
		fileEnv := append(slices.Clone(dotenv), ent.Env...)
		env := caller
		for _, kv := range fileEnv {
			k, v, _ := strings.Cut(kv, "=")
			env = core.Setenv(env, k, v)
		}
		ut.env = env
		if ut.spec, err = e.mgr.Prepare(ent.Argv, wd, env); err != nil {
			return &exitError{code: exitCode(err), err: fmt.Errorf("%s: %w", n, err)}
		}
		restart, err := core.ParseRestart(orNo(ent.Restart))
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s: %s: %w", f.Path, n, err)}
		}
		ut.spec.Restart = restart
		ut.spec.Project, ut.spec.Entry = dir, n
		ut.spec.Def = definition(dir, ut.spec, fileEnv, ent.Deps)
		ut.name = taskName(views, dir, n, ut.spec.Hash, ut.old)
		ut.spec.Name = ut.name
		if ent.Ready != nil {
			ut.probe = newProber(ent.Ready, ut.spec.Dir, env)
		}
		tasks[n] = ut
	}

	// waited reports whether an entry's condition is still waited for:
	// by a dependent that has not started, or by --wait.
	waited := func(n string) (healthy, completed bool) {
		for _, m := range order {
			d := tasks[m]
			if d.task != nil || d.skipped || d.failed != nil {
				continue
			}
			for _, dep := range d.entry.Deps {
				if dep.Name == n {
					healthy = healthy || dep.Condition == project.Healthy
					completed = completed || dep.Condition == project.Completed
				}
			}
		}
		if o.wait && tasks[n].probe != nil {
			healthy = true
		}
		return healthy, completed
	}
	started, kept := 0, 0
	pause := time.Millisecond
	for {
		// Start what may start.
		for _, n := range order {
			ut := tasks[n]
			if ut.task != nil || ut.skipped || ut.failed != nil {
				continue
			}
			can, blocked := true, ""
			for _, dep := range ut.entry.Deps {
				d := tasks[dep.Name]
				switch {
				case d.failed != nil || d.skipped:
					blocked = dep.Name
				case d.task == nil:
					can = false
				case dep.Condition == project.Healthy && !d.ready:
					can = false
				case dep.Condition == project.Completed && (d.ended == nil || !isSuccess(*d.ended)):
					can = false
				}
			}
			if blocked != "" {
				ut.skipped = true
				fmt.Fprintf(e.stderr, "[btl] %s: not started: %s failed\n", ut.name, tasks[blocked].name)
				continue
			}
			if !can {
				continue
			}
			fresh, err := e.upStart(ctx, ut, o.force)
			if err != nil {
				ut.failed = err
				fmt.Fprintf(e.stderr, "[btl] %s: %s\n", ut.name, oneLine(err))
				continue
			}
			if fresh {
				started++
			} else {
				kept++
			}
		}
		// Look at what others wait for.
		busy := false
		for _, n := range order {
			ut := tasks[n]
			if ut.task == nil || ut.failed != nil {
				if ut.task == nil && !ut.skipped && ut.failed == nil {
					busy = true
				}
				continue
			}
			healthy, completed := waited(n)
			if (!healthy || ut.ready) && (!completed || ut.ended != nil) {
				continue
			}
			busy = true
			if err := e.upCheck(ctx, ut, healthy, completed, o.timeout); err != nil {
				ut.failed = err
			}
		}
		if !busy {
			break
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return &exitError{code: interruptedExit, err: errors.New("interrupted; the entries started so far still run (btl down stops them)")}
		case <-t.C:
		}
		pause = min(pause*2, waitPoll)
	}

	var failed, skipped []string
	code := 1
	for _, n := range order {
		ut := tasks[n]
		switch {
		case ut.failed != nil:
			failed = append(failed, ut.name)
			var ee *exitError
			if errors.As(ut.failed, &ee) && ee.code == waitTimeoutExit && len(failed) == 1 {
				code = waitTimeoutExit
			}
		case ut.skipped:
			skipped = append(skipped, ut.name)
		}
	}
	if len(failed) > 0 {
		msg := fmt.Sprintf("%s failed", strings.Join(failed, ", "))
		if len(skipped) > 0 {
			msg += fmt.Sprintf("; not started: %s", strings.Join(skipped, ", "))
		}
		return &exitError{code: code, err: errors.New(msg + " (the others still run; btl down stops them)")}
	}
	fmt.Fprintf(e.stdout, "[btl] Up: %d started, %d unchanged\n", started, kept)
	if o.follow {
		var hashes []string
		for _, n := range order {
			hashes = append(hashes, tasks[n].task.Hash)
		}
		return e.followMany(ctx, hashes, logOptions{follow: true}, true)
	}
	return nil
}

// entries is "1 entry", "3 entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return strconv.Itoa(n) + " entries"
}

// orNo is s, or "no" when empty.
func orNo(s string) string {
	if s == "" {
		return "no"
	}
	return s
}

// isSuccess reports whether st is an exit with code 0.
func isSuccess(st core.Status) bool { return st.State == core.Exited && st.Code == 0 }

// recorded returns the task btl up started for the project's entry: the
// one that may still run, else the newest.
func recorded(views []core.View, dir, entry string) *core.View {
	var found *core.View
	for i := range views {
		v := &views[i]
		if v.Project != dir || v.Entry != entry {
			continue
		}
		if found == nil || !v.Status.Ended() || found.Status.Ended() && v.StartedAt.After(found.StartedAt) {
			found = v
		}
	}
	return found
}

// taskName is the name of the project's entry: the name its task already
// has; else the entry's own name, unless another task has it (of another
// project, or started by hand; the task this start replaces, of the same
// hash, does not count) or it reads as a hash; then
// <project>.<entry>, <project> being the directory's base name; and
// should that be taken too, <project>-<6 hex of the directory's
// path>.<entry>.
func taskName(views []core.View, dir, entry, hash string, old *core.View) string {
	if old != nil && old.Name != "" {
		return old.Name
	}
	base := nameSafe(filepath.Base(dir))
	sum := sha256.Sum256([]byte(dir))
	for _, cand := range []string{entry, base + "." + entry, base + "-" + hex.EncodeToString(sum[:3]) + "." + entry} {
		if core.CheckName(cand) != nil {
			continue
		}
		taken := false
		for _, v := range views {
			if v.Name == cand && v.Hash != hash && (v.Project != dir || v.Entry != entry) {
				taken = true
			}
		}
		if !taken {
			return cand
		}
	}
	return ""
}

// nameSafe makes s fit in a task name: letters, digits, '.', '_' and '-'
// (others become '-'), starting with a letter or digit, at most 15 bytes.
func nameSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	s = strings.TrimLeft(string(b), ".-_")
	if len(s) > 15 {
		s = s[:15]
	}
	if s == "" {
		s = "project"
	}
	return s
}

// definition is the digest of what makes an entry's task: the project,
// its directory, command, the variables the project gives it (not the
// caller's), its dependencies and restart policy. btl up replaces a
// running entry only when this changed.
func definition(dir string, spec core.Spec, fileEnv []string, deps []project.Dep) string {
	var ds []string
	for _, d := range deps {
		ds = append(ds, d.Name+":"+string(d.Condition))
	}
	sort.Strings(ds)
	b, _ := json.Marshal([]any{dir, spec.Dir, spec.Argv, fileEnv, ds, spec.Restart.String()})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// upStart starts ut's task, or leaves it running when its definition did
// not change. It reports whether it started one.
func (e *env) upStart(ctx context.Context, ut *upTask, force bool) (bool, error) {
	if old := ut.old; old != nil && !force && old.Hash == ut.spec.Hash && old.Def == ut.spec.Def && old.Status.Alive() {
		ut.task, ut.since = old.Task, time.Now()
		fmt.Fprintf(e.stdout, "[btl] %s: unchanged, PID %d, hash %s\n", ut.name, currentPID(*old), old.Hash)
		return false, nil
	}
	why := ""
	if old := ut.old; old != nil && old.Hash != ut.spec.Hash {
		// Another command or directory: another task, which the entry
		// no longer is. It goes, and its name comes to the new one.
		killed, err := e.mgr.Kill(ctx, []string{old.Hash}, false)
		if err != nil {
			return false, fmt.Errorf("stop the previous definition (%s): %w", old.Hash, err)
		}
		why = " (definition changed)"
		if len(killed) == 1 && killed[0].Status.Alive() {
			why = fmt.Sprintf(" (definition changed; stopped %s, PID %d)", old.Hash, killed[0].PID)
		}
	}
	e.mgr.OnReplace = nil
	e.mgr.OnForceKill = e.forceKillNotice
	e.mgr.OnStarting = func() { ut.since = time.Now() }
	e.mgr.OnRehash = nil
	logFrom := logSize(ut.spec.LogFile)
	task, replaced, err := e.mgr.Run(ctx, ut.spec)
	if err != nil {
		return false, err
	}
	if replaced != nil && why == "" {
		why = fmt.Sprintf(" (replaced PID %d)", replaced.PID)
		if ut.old != nil && ut.old.Def != ut.spec.Def {
			why = fmt.Sprintf(" (definition changed; replaced PID %d)", replaced.PID)
		}
	}
	ut.task = task
	if ut.probe != nil && ut.probe.p.LogLine != "" {
		ut.probe.log = logread.NewWatch(task.LogFile, logFrom, regexp.MustCompile(regexp.QuoteMeta(ut.probe.p.LogLine)))
	}
	fmt.Fprintf(e.stdout, "[btl] %s: started, PID %d, hash %s%s\n", ut.name, task.PID, task.Hash, why)
	return true, nil
}

// upCheck looks once at a started entry that others wait for: whether its
// probe holds (healthy), whether it ended (and how). It returns an error
// once the entry cannot meet the condition any more.
func (e *env) upCheck(ctx context.Context, ut *upTask, healthy, completed bool, timeout time.Duration) error {
	st := e.mgr.Check(ctx, ut.task)
	if healthy && !ut.ready && !st.Ended() {
		if ok, what := ut.probe.check(ctx, e, ut.task); ok {
			ut.ready = true
			fmt.Fprintf(e.stdout, "[btl] %s: ready after %.2fs: %s\n", ut.name, time.Since(ut.since).Seconds(), what)
			return nil
		}
	}
	if st.Ended() {
		ut.ended = &st
		switch {
		case completed && isSuccess(st):
			fmt.Fprintf(e.stdout, "[btl] %s: completed (%s)\n", ut.name, st)
			return nil
		case completed:
			logread.Settle(ut.task.LogFile)
			e.tellLogEnd(ut.task, fmt.Sprintf("[btl] %s did not complete successfully (%s); the end of its log:", ut.name, st))
			return fmt.Errorf("%s ended (%s)", ut.name, st)
		case healthy && !ut.ready:
			logread.Settle(ut.task.LogFile)
			e.tellLogEnd(ut.task, fmt.Sprintf("[btl] %s ended (%s) before it was ready; the end of its log:", ut.name, st))
			return fmt.Errorf("%s ended (%s) before it was ready", ut.name, st)
		}
		return nil
	}
	if time.Since(ut.since) >= timeout {
		_ = e.mgr.SyncLog(ctx, ut.task)
		what := "ready"
		if !healthy {
			what = "done"
		}
		e.tellLogEnd(ut.task, fmt.Sprintf("[btl] %s not %s after %v; the end of its log:", ut.name, what, timeout))
		return &exitError{code: waitTimeoutExit, err: fmt.Errorf("%s was not %s within %v", ut.name, what, timeout)}
	}
	return nil
}

// prober checks an entry's readiness probe: every condition it sets must
// hold. What held once (a log line, an answer) is not asked again.
type prober struct {
	p        *project.Probe
	dir      string   // the entry's working directory
	env      []string // the entry's environment, for exec
	log      *logread.Watch
	next     time.Time // no exec or http look before
	httpOK   bool
	execOK   bool
	firstTry time.Time
}

func newProber(p *project.Probe, dir string, env []string) *prober {
	return &prober{p: p, dir: dir, env: env}
}

// probeDefaultPeriod is the pause between two exec or http looks when the
// file gives none.
const probeDefaultPeriod = 200 * time.Millisecond

func (pr *prober) check(ctx context.Context, e *env, task *core.Task) (bool, string) {
	now := time.Now()
	if pr.firstTry.IsZero() {
		pr.firstTry = now
	}
	if now.Sub(pr.firstTry) < seconds(pr.p.InitialDelay) {
		return false, ""
	}
	var seen []string
	if pr.p.LogLine != "" {
		_ = e.mgr.SyncLog(ctx, task)
		if pr.log == nil {
			pr.log = logread.NewWatch(task.LogFile, 0, regexp.MustCompile(regexp.QuoteMeta(pr.p.LogLine)))
		}
		line, ok := pr.log.Match()
		if !ok {
			return false, ""
		}
		seen = append(seen, "log line "+strconv.Quote(line))
	}
	if pr.p.Port != 0 {
		if !slices.Contains(core.TaskUsage(task).Ports, pr.p.Port) {
			return false, ""
		}
		seen = append(seen, "listening on port "+strconv.Itoa(pr.p.Port))
	}
	if (pr.p.HTTP != nil && !pr.httpOK || pr.p.Exec != "" && !pr.execOK) && now.Before(pr.next) {
		return false, ""
	}
	period := probeDefaultPeriod
	if pr.p.Period > 0 {
		period = seconds(pr.p.Period)
	}
	timeout := time.Second
	if pr.p.Timeout > 0 {
		timeout = seconds(pr.p.Timeout)
	}
	if h := pr.p.HTTP; h != nil {
		if !pr.httpOK {
			pr.next = now.Add(period)
			pr.httpOK = httpReady(ctx, h.URL(), timeout)
			if !pr.httpOK {
				return false, ""
			}
		}
		seen = append(seen, "GET "+h.URL()+" answered")
	}
	if pr.p.Exec != "" {
		if !pr.execOK {
			pr.next = now.Add(period)
			pr.execOK = pr.exec(ctx, timeout)
			if !pr.execOK {
				return false, ""
			}
		}
		seen = append(seen, strconv.Quote(pr.p.Exec)+" exited 0")
	}
	return true, strings.Join(seen, ", ")
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// httpReady reports whether a GET of url answers with a status below 400.
func httpReady(ctx context.Context, url string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode < 400
}

// exec runs the probe's command with sh and reports whether it exited 0.
func (pr *prober) exec(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", pr.p.Exec)
	c.Dir = pr.dir
	if d := pr.p.ExecDir; d != "" {
		if filepath.IsAbs(d) {
			c.Dir = d
		} else {
			c.Dir = filepath.Join(pr.dir, d)
		}
	}
	c.Env = pr.env
	return c.Run() == nil
}

// down stops the project's tasks, dependents first (see newDownCmd).
func (e *env) down(ctx context.Context, file string, names []string) error {
	dir, f, err := loadProject(file, 5000)
	if errors.Is(err, project.ErrNoFile) {
		// The file is gone: its tasks are still the directory's.
		if dir, err = os.Getwd(); err == nil {
			dir, err = filepath.EvalSymlinks(dir)
		}
		if err != nil {
			return fmt.Errorf("current directory: %w", err)
		}
	} else if err != nil && dir == "" {
		return err
	} else if err != nil {
		// The tasks are recorded: they stop in the reverse order of their
		// starts instead.
		fmt.Fprintf(e.stderr, "Warning: %s; stopping in the reverse order of the starts\n", oneLine(err))
		f = nil
	}
	views, err := e.mgr.List(ctx)
	if err != nil {
		return err
	}
	var mine []core.View
	for _, v := range views {
		if v.Project == dir && (len(names) == 0 || slices.Contains(names, v.Entry)) {
			mine = append(mine, v)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(mine, func(v core.View) bool { return v.Entry == n }) {
			return usageError("project %s has no task for entry %q", printable(dir), n)
		}
	}
	// rank: the position in the file's dependency order; -1 for an entry
	// the file no longer has (stopped first).
	rank := map[string]int{}
	if f != nil {
		var all []string
		for _, en := range f.Entries {
			all = append(all, en.Name)
		}
		if order, err := f.Order(all); err == nil {
			for i, n := range order {
				rank[n] = i + 1
			}
		}
	}
	sort.SliceStable(mine, func(i, j int) bool {
		ri, rj := rank[mine[i].Entry], rank[mine[j].Entry]
		if (ri == 0) != (rj == 0) {
			return ri == 0
		}
		if ri != rj {
			return ri > rj
		}
		return mine[i].StartedAt.After(mine[j].StartedAt)
	})
	if len(mine) == 0 {
		fmt.Fprintf(e.stdout, "[btl] Project %s has no tasks\n", printable(dir))
		return nil
	}
	e.mgr.OnForceKill = e.forceKillNotice
	var errs []error
	n := 0
	for _, v := range mine {
		label := v.Name
		if label == "" {
			label = v.Entry
		}
		if v.Status.Ended() {
			fmt.Fprintf(e.stdout, "[btl] %s: not running (%s)\n", label, v.Status)
			continue
		}
		stopped, err := e.mgr.Stop(ctx, []string{v.Hash}, false)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %s: %s\n", label, oneLine(err))
			errs = append(errs, err)
			continue
		}
		if len(stopped) == 1 && stopped[0].Status.Alive() {
			n++
			fmt.Fprintf(e.stdout, "[btl] %s: stopped (PID %d)\n", label, stopped[0].PID)
		} else {
			fmt.Fprintf(e.stdout, "[btl] %s: not running\n", label)
		}
	}
	fmt.Fprintf(e.stdout, "[btl] Down: stopped %s\n", plural(n, "task"))
	if len(errs) > 0 {
		return &exitError{code: exitCode(errs[0]), err: fmt.Errorf("%d of %d stops failed", len(errs), len(mine))}
	}
	return nil
}
