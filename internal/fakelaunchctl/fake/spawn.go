//go:build linux

package fake

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"howett.net/plist"
)

// plistSpec holds the launchd.plist keys the fake understands.
type plistSpec struct {
	Label                  string            `plist:"Label"`
	Program                string            `plist:"Program"`
	ProgramArguments       []string          `plist:"ProgramArguments"`
	WorkingDirectory       string            `plist:"WorkingDirectory"`
	EnvironmentVariables   map[string]string `plist:"EnvironmentVariables"`
	StandardOutPath        string            `plist:"StandardOutPath"`
	StandardErrorPath      string            `plist:"StandardErrorPath"`
	RunAtLoad              bool              `plist:"RunAtLoad"`
	ExitTimeOut            *int              `plist:"ExitTimeOut"`
	AbandonProcessGroup    bool              `plist:"AbandonProcessGroup"`
	ProcessType            string            `plist:"ProcessType"`
	LimitLoadToSessionType any               `plist:"LimitLoadToSessionType"` // string or array
	SoftResourceLimits     resourceLimits    `plist:"SoftResourceLimits"`
	HardResourceLimits     resourceLimits    `plist:"HardResourceLimits"`
	Umask                  *int              `plist:"Umask"`
	KeepAlive              any               `plist:"KeepAlive"` // bool or dictionary
	ThrottleInterval       *int              `plist:"ThrottleInterval"`
	sessionTypes           []string          // LimitLoadToSessionType as a list
}

// resourceLimits is the part of SoftResourceLimits/HardResourceLimits the
// fake applies.
type resourceLimits struct {
	NumberOfFiles uint64 `plist:"NumberOfFiles"`
}

// loadPlist reads and validates the plist at path. With checkPerm it also
// rejects files that are group/world-writable or not owned by uid, as launchd
// does. Real launchctl would resolve a relative path; the fake rejects it so
// backends are forced to pass absolute paths.
func loadPlist(path string, uid int, checkPerm bool) (*plistSpec, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("relative plist path %q", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if checkPerm {
		if fi.Mode().Perm()&0o022 != 0 {
			return nil, fmt.Errorf("bad permissions %#o: group/world-writable", fi.Mode().Perm())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			return nil, fmt.Errorf("bad ownership: owner uid %d, caller %d", st.Uid, uid)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec plistSpec
	if _, err := plist.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("unparsable plist: %w", err)
	}
	switch v := spec.LimitLoadToSessionType.(type) {
	case nil:
	case string:
		spec.sessionTypes = []string{v}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("LimitLoadToSessionType: not a string array")
			}
			spec.sessionTypes = append(spec.sessionTypes, s)
		}
	default:
		return nil, fmt.Errorf("LimitLoadToSessionType: unexpected %T", v)
	}
	switch v := spec.KeepAlive.(type) {
	case nil, bool:
	case map[string]any:
		for k, c := range v {
			switch k {
			case "SuccessfulExit":
				if _, ok := c.(bool); !ok {
					return nil, errors.New("KeepAlive: SuccessfulExit is not a boolean")
				}
			case "PathState":
				m, ok := c.(map[string]any)
				if !ok {
					return nil, errors.New("KeepAlive: PathState is not a dictionary")
				}
				for _, b := range m {
					if _, ok := b.(bool); !ok {
						return nil, errors.New("KeepAlive: PathState value is not a boolean")
					}
				}
			default:
				return nil, fmt.Errorf("KeepAlive: the fake does not model %s", k)
			}
		}
	default:
		return nil, fmt.Errorf("KeepAlive: unexpected %T", v)
	}
	if spec.Label == "" {
		return nil, errors.New("missing Label")
	}
	if spec.Program == "" && len(spec.ProgramArguments) == 0 {
		return nil, errors.New("neither Program nor ProgramArguments")
	}
	return &spec, nil
}

// newJob builds the job record for a freshly bootstrapped spec. With
// RunAtLoad it is "spawn scheduled", or already failed with 78 when the
// program cannot be resolved; without it, "not running".
func newJob(spec *plistSpec, path string) *job {
	j := &job{
		Label:               spec.Label,
		Instance:            strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 10),
		Plist:               path,
		Program:             spec.Program,
		Arguments:           spec.ProgramArguments,
		WorkingDirectory:    spec.WorkingDirectory,
		StdoutPath:          spec.StandardOutPath,
		StderrPath:          spec.StandardErrorPath,
		Environment:         map[string]string{},
		ExitTimeout:         defaultExitTimer,
		AbandonProcessGroup: spec.AbandonProcessGroup,
		RunAtLoad:           spec.RunAtLoad,
		ProcessType:         spec.ProcessType,
		SessionTypes:        spec.sessionTypes,
		State:               stateNotRunning,
		SoftFiles:           spec.SoftResourceLimits.NumberOfFiles,
		HardFiles:           spec.HardResourceLimits.NumberOfFiles,
		Umask:               -1,
	}
	if spec.Umask != nil {
		j.Umask = *spec.Umask
	}
	if j.Program == "" {
		j.Program = j.Arguments[0]
	}
	if len(j.Arguments) == 0 {
		j.Arguments = []string{j.Program}
	}
	for k, v := range spec.EnvironmentVariables {
		j.Environment[k] = v
	}
	// launchd sets XPC_SERVICE_NAME to the label. Whether it overrides a
	// value the plist gives is not known: the fake keeps the plist's.
	if _, ok := j.Environment["XPC_SERVICE_NAME"]; !ok {
		j.Environment["XPC_SERVICE_NAME"] = j.Label
	}
	if _, ok := j.Environment["PATH"]; !ok {
		j.Environment["PATH"] = defaultPath
	}
	if spec.ExitTimeOut != nil {
		j.ExitTimeout = *spec.ExitTimeOut
	}
	j.Throttle = defaultThrottle
	if spec.ThrottleInterval != nil {
		j.Throttle = *spec.ThrottleInterval
	}
	switch v := spec.KeepAlive.(type) {
	case bool:
		j.KeepAlive = v
	case map[string]any:
		if b, ok := v["SuccessfulExit"].(bool); ok {
			j.SuccessfulExit = &b
			// "This key implies that RunAtLoad is set to true" [P1].
			j.RunAtLoad = true
		}
		if m, ok := v["PathState"].(map[string]any); ok {
			j.PathState = map[string]bool{}
			for path, b := range m {
				j.PathState[path] = b.(bool)
			}
		}
	}
	if !j.RunAtLoad || os.Getenv(envNeverRun) == "1" {
		return j
	}
	if p, err := resolveProgram(j.Program, j.WorkingDirectory); err == nil {
		j.ProgramPath = p
		j.State = stateSpawning
	} else {
		j.markSpawnFailed()
	}
	return j
}

// markSpawnFailed records a spawn that failed the way launchd reports it:
// one more run, not running, "last exit code = 78: EX_CONFIG".
func (j *job) markSpawnFailed() {
	j.State, j.PID, j.MonitorPID = stateNotRunning, 0, 0
	j.Runs++
	j.Exited = true
	j.WaitStatus = exConfig << 8
	j.ExitReason = os.Getenv(envExitReason)
}

// protectedPlaces are the folders jobs launchd starts may not use, as on a
// Mac where the user granted Terminal access to them (TCC): FAKE_LAUNCHCTL_PROTECTED
// (a colon-separated list; "none" for none), by default /Volumes and the
// home folder's Documents, Desktop, Downloads, iCloud Drive and
// CloudStorage [T1 T2 T3 T4].
func protectedPlaces() []string {
	if v, ok := os.LookupEnv(envProtected); ok {
		if v == "none" {
			return nil
		}
		return filepath.SplitList(v)
	}
	places := []string{"/Volumes"}
	if home, err := os.UserHomeDir(); err == nil {
		for _, d := range []string{"Documents", "Desktop", "Downloads", "Library/Mobile Documents", "Library/CloudStorage"} {
			places = append(places, filepath.Join(home, d))
		}
	}
	return places
}

// inProtected returns the first of the job's working directory, program
// and log files that is in a protected place, or "".
func (j *job) inProtected() string {
	for _, p := range []string{j.WorkingDirectory, j.ProgramPath, j.StdoutPath, j.StderrPath} {
		for _, place := range protectedPlaces() {
			if p != "" && (p == place || strings.HasPrefix(p, place+"/")) {
				return p
			}
		}
	}
	return ""
}

// resolveProgram finds the executable launchd would run. Absolute names are
// used as is, names with a slash are relative to the working directory, and
// bare names are searched only in /usr/bin:/bin:/usr/sbin:/sbin (never the
// caller's PATH).
func resolveProgram(name, wd string) (string, error) {
	var cands []string
	switch {
	case filepath.IsAbs(name):
		cands = []string{name}
	case strings.Contains(name, "/"):
		if wd == "" {
			wd = "/"
		}
		cands = []string{filepath.Join(wd, name)}
	default:
		for _, d := range filepath.SplitList(defaultPath) {
			cands = append(cands, filepath.Join(d, name))
		}
	}
	for _, p := range cands {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found or not executable", name)
}

// startDetached re-executes this binary with args in a new session, in /
// (with the absolute state directory), with stdio on /dev/null and extra (if
// any) as fd 3, and does not wait.
func (c *cli) startDetached(extra *os.File, args ...string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir, cmd.Env = "/", append(os.Environ(), envState+"="+c.st.dir)
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// startMonitor starts the job's monitor and returns once the monitor has
// recorded the pid or the spawn failure (it reports on a pipe, or exits);
// if the job is still "spawn scheduled" then, it is recorded as failed (78).
func (c *cli) startMonitor(t target, j *job) {
	r, w, err := os.Pipe()
	if err == nil {
		err = c.startDetached(w, hiddenMonitor, t.domain(), j.Label, j.Instance)
		_ = w.Close()
		if err == nil {
			_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
			var buf [8]byte
			if n, rerr := r.Read(buf[:]); n > 0 {
				_ = r.Close()
				return // taken: the job may already have run, and be scheduled again
			} else if rerr != nil {
				err = rerr
			}
		}
		_ = r.Close()
	}
	c.st.modify(t, j.Label, j.Instance, func(j *job) {
		if j.State == stateSpawning && j.Runs == 0 {
			c.diag("spawn %s: monitor did not take the job (%v)", j.Label, err)
			j.markSpawnFailed()
		}
	})
}

// monitor is the per-job helper (hidden subcommand). It spawns the program,
// records its pid, reports on fd 3, waits for the exit, SIGTERMs the process
// group (unless AbandonProcessGroup) and records the wait status.
func (c *cli) monitor(t target, label, instance string) int {
	syscall.CloseOnExec(3) // the job must not inherit the report pipe
	notify := os.NewFile(3, "notify")
	report := func() {
		if notify != nil {
			_, _ = notify.WriteString("ok\n")
			_ = notify.Close()
			notify = nil
		}
	}
	defer report()
	j := c.st.get(t, label)
	if j == nil || j.Instance != instance {
		return 0
	}
	// launchd spawns through xpcproxy: bootstrap returns while the job
	// is still "spawning", and the program runs a while later.
	if !c.st.modify(t, label, instance, func(j *job) { j.State = stateSpawningSlow }) {
		return 0
	}
	report()
	if !c.waitSpawn(t, label, instance, time.Unix(0, j.SpawnAt)) {
		return 0
	}
	for {
		ws, ok := c.runJob(t, label, instance, report)
		if !ok {
			return 0
		}
		// KeepAlive: launchd spawns the job again, no sooner than
		// ThrottleInterval after its last spawn [P1].
		j = c.st.get(t, label)
		if j == nil || j.Instance != instance || j.lingering() || !j.keptAlive(ws) {
			return 0
		}
		if !c.st.modify(t, label, instance, func(j *job) {
			if !j.lingering() {
				j.State = stateSpawning
			}
		}) {
			return 0
		}
		if !c.waitSpawn(t, label, instance, j.spawned(time.Duration(j.Throttle)*time.Second)) {
			return 0
		}
	}
}

// waitSpawn waits until the clock reaches at, and reports whether the job
// is still loaded (not booted out or replaced) then. A booted-out job ends
// the wait early: its monitor must not outlive it on a test's clock that
// no longer moves.
func (c *cli) waitSpawn(t target, label, instance string, at time.Time) bool {
	for i := 0; ; i++ {
		if i%10 == 0 || !c.clk.now().Before(at) {
			j := c.st.get(t, label)
			if j == nil || j.Instance != instance || j.lingering() {
				return false
			}
			if !c.clk.now().Before(at) {
				return true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runJob spawns the job's program once, records it running, calls report,
// waits for it to end and records how it did. ok is false when the job
// was booted out (or replaced) meanwhile, or its program could not run.
func (c *cli) runJob(t target, label, instance string, report func()) (ws syscall.WaitStatus, ok bool) {
	j := c.st.get(t, label)
	if j == nil || j.Instance != instance || j.lingering() {
		return 0, false
	}
	if err := applyLimits(j); err != nil {
		c.diag("spawn %s: %v", label, err)
	}
	if p := j.inProtected(); p != "" {
		// The job may not open it: launchd reports EX_CONFIG.
		c.diag("spawn %s: %s: operation not permitted (protected place)", label, p)
		c.st.modify(t, label, instance, (*job).markSpawnFailed)
		return 0, false
	}
	cmd, files, err := jobCommand(j)
	if err == nil {
		err = cmd.Start()
	}
	for _, f := range files {
		_ = f.Close()
	}
	if err != nil {
		c.diag("spawn %s: %v", label, err)
		c.st.modify(t, label, instance, (*job).markSpawnFailed)
		return 0, false
	}
	pid := cmd.Process.Pid
	taken := false
	_ = c.st.update(t, func(st *domainState) bool {
		j := st.Jobs[label]
		if j == nil || j.Instance != instance || j.lingering() {
			return false
		}
		j.State, j.PID, j.MonitorPID = stateRunning, pid, os.Getpid()
		j.Runs++
		j.LastSpawn = c.clk.now().UnixNano()
		taken = true
		return true
	})
	if !taken {
		_ = unix.Kill(pid, unix.SIGKILL) // booted out while spawning
	}
	report()
	// Wait without reaping: the pid stays ours until we reap it under the
	// domain lock, so signals sent under that lock never hit a reused pid.
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
	_ = c.st.update(t, func(st *domainState) bool {
		if !j.AbandonProcessGroup {
			_ = unix.Kill(-pid, unix.SIGTERM) // the rest of the group; main is a zombie
		}
		_ = cmd.Wait()
		cur := st.Jobs[label]
		if cur == nil || cur.Instance != instance {
			return false
		}
		if !cur.lingering() {
			cur.State = stateNotRunning
		}
		cur.PID, cur.MonitorPID = 0, 0
		cur.Exited = true
		cur.ExitReason = os.Getenv(envExitReason)
		if ps := cmd.ProcessState; ps != nil {
			ws = ps.Sys().(syscall.WaitStatus)
			cur.WaitStatus = int(ws)
		}
		ok = taken
		return true
	})
	return ws, ok
}

// keptAlive reports whether launchd spawns the job again after a run that
// ended with ws: KeepAlive true always; a KeepAlive dictionary when any of
// its conditions holds [P1]: SuccessfulExit true after exit 0, false after
// any other end (a non-zero code or a signal); PathState when each
// path's existence is what its value asks for.
func (j *job) keptAlive(ws syscall.WaitStatus) bool {
	if j.KeepAlive {
		return true
	}
	if j.SuccessfulExit != nil {
		good := ws.Exited() && ws.ExitStatus() == 0
		if good == *j.SuccessfulExit {
			return true
		}
	}
	for path, want := range j.PathState {
		_, err := os.Stat(path)
		if (err == nil) == want {
			return true
		}
	}
	return false
}

// spawned is when the job may be spawned again: its last spawn plus d.
func (j *job) spawned(d time.Duration) time.Time {
	return time.Unix(0, j.LastSpawn).Add(d)
}

// spawnDelay is how long the "spawning" phase before a job's program runs
// lasts: FAKE_LAUNCHCTL_SPAWN_DELAY, or drawn in [spawnMin, spawnMax).
func spawnDelay() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(envSpawnDelay)); err == nil {
		return d
	}
	return spawnMin + rand.N(spawnMax-spawnMin)
}

// Bounds of the "spawning" phase before a job's program runs.
const (
	spawnMin = 50 * time.Millisecond
	spawnMax = 300 * time.Millisecond
)

// applyLimits sets, in the monitor, what the job's program inherits from
// launchd: a soft RLIMIT_NOFILE of 256 unless the plist sets
// SoftResourceLimits, the plist's hard limit if any, and launchd's umask
// (022) unless the plist sets Umask. syscall.Setrlimit (not x/sys/unix)
// also stops the Go runtime from restoring its own limit in the child.
func applyLimits(j *job) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if j.HardFiles > 0 && j.HardFiles < lim.Max {
		lim.Max = j.HardFiles
	}
	lim.Cur = cmp.Or(j.SoftFiles, defaultSoftFiles)
	lim.Cur = min(lim.Cur, lim.Max)
	if j.Umask >= 0 {
		syscall.Umask(j.Umask)
	} else {
		syscall.Umask(defaultUmask)
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// jobCommand prepares the job's process: own session, working directory
// (launchd's default is /), exact environment, stdin /dev/null, stdout/stderr appended to the log
// paths (one shared file when they are equal). files must be closed by the
// caller after Start.
func jobCommand(j *job) (cmd *exec.Cmd, files []*os.File, err error) {
	env := make([]string, 0, len(j.Environment))
	for k, v := range j.Environment {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	cmd = &exec.Cmd{
		Path:        j.ProgramPath,
		Args:        j.Arguments,
		Dir:         cmp.Or(j.WorkingDirectory, "/"),
		Env:         env,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	open := func(path string) (*os.File, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			files = append(files, f)
		}
		return f, err
	}
	if j.StdoutPath != "" {
		if cmd.Stdout, err = open(j.StdoutPath); err != nil {
			return cmd, files, err
		}
	}
	if j.StderrPath != "" {
		if j.StderrPath == j.StdoutPath {
			cmd.Stderr = cmd.Stdout
		} else if cmd.Stderr, err = open(j.StderrPath); err != nil {
			return cmd, files, err
		}
	}
	return cmd, files, nil
}
