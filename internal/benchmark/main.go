//go:build linux

// Command benchmark is btl's end-to-end benchmark (scripts/bench runs it
// as the unprivileged test user; docs/benchmarks.md has its latest report).
//
// It times whole processes, exec to exit, with the wall clock, and reads
// their peak RSS from the kernel (rusage), for each btl command next to the
// operating-system floor it competes with: setsid -f, systemd-run,
// systemctl stop, kill. Every btl measurement is paired with its floor in
// the same iteration, in alternating order, so that drift on a busy machine
// hits both alike; the report gives medians, p90s and the median of the
// per-pair ratios (or differences). It never touches a real btl state:
// HOME and XDG_DATA_HOME point into a throwaway directory, and every task,
// unit and process it starts is stopped before it exits.
//
//	go build -o /tmp/btl ./cmd/btl && go run ./internal/benchmark -btl /tmp/btl -out docs/benchmarks.md
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"btl/backend/systemd"
	"btl/internal/proc"
)

var (
	flagN       = flag.Int("n", 30, "iterations of each benchmark")
	flagBTL     = flag.String("btl", "btl", "btl binary to benchmark (built without -race)")
	flagOut     = flag.String("out", "", "write the markdown report to this file as well")
	flagGoBench = flag.String("gobench", "", "output of the core Go benchmarks to include in the report")
	flagSystemd = flag.String("systemd", "auto", "systemd rows: auto (when a user manager answers), yes or no")
	flagRev     = flag.String("rev", "", "revision of btl benchmarked, for the report")
	flagGrowth  = flag.String("growth", "1,10,100,300", "numbers of real running tasks the growth rows are measured with (empty: none)")
	flagGrowthN = flag.Int("growth-n", 10, "iterations of each growth measurement")
	flagPM2     = flag.String("pm2", "auto", "pm2 rows: auto (when pm2 is on PATH) or no")
	flagOnly    = flag.String("only", "", "run only these parts, comma-separated: floor, lifecycle, memory, idle, list, pm2, watch, growth (for a quick look; the report is partial)")
	flagHello   = flag.String("hello", "", "a Go hello-world built with btl's flags, the floor of `btl --version` (scripts/bench builds it from internal/benchmark/hello)")
	flagSVG     = flag.String("svg", "", "write the growth plot to this file (default: benchmarks-growth.svg beside -out)")
)

// sample is one measured process.
type sample struct {
	ms  float64 // exec to exit, wall clock
	rss float64 // peak RSS, MiB
	out string  // stdout and stderr
}

// bench runs processes in a throwaway btl data directory and remembers
// what it started, to stop it all at the end.
type bench struct {
	btl, tmp, work string // binary, throwaway root, cwd of every command
	self           string // this program, re-executed as the spawner
	tag            string // in every sleep argument and unit name of this run
	seq            int
	out            *os.File
	dataDirs       []string // XDG_DATA_HOME of each btl data directory used
	systemd        bool
	fs, load       string    // file system of tmp, load average at start
	date           time.Time // of the start
	pm2Home        string    // PM2_HOME of pm2, once started
	pm2Version     string
	progress       *os.File // where progress lines go

	// mu is held while a command runs; once stopping is set (by cleanup,
	// which may run on a signal), no command starts any more.
	mu       sync.Mutex
	stopping bool
	cur      atomic.Int64 // process group of the command running, if any
}

func main() {
	if os.Getenv(spawnEnv) != "" {
		spawn()
	}
	// After the spawner, which passes it on to the task it starts.
	if os.Getenv(serveEnv) != "" {
		serve()
	}
	flag.Parse()
	if os.Geteuid() == 0 {
		fatal(fmt.Errorf("run me as a regular user (scripts/bench does it for root)"))
	}
	btl, err := exec.LookPath(*flagBTL)
	if err == nil {
		btl, err = filepath.Abs(btl)
	}
	if err != nil {
		fatal(err)
	}
	tmp, err := os.MkdirTemp("", "btl-bench-")
	if err != nil {
		fatal(err)
	}
	b := &bench{btl: btl, tmp: tmp, work: filepath.Join(tmp, "work"), tag: strconv.Itoa(10000 + os.Getpid()%90000), progress: os.Stderr}
	if b.self, err = os.Executable(); err != nil {
		fatal(err)
	}
	b.fs, b.load, b.date = fsType(tmp), loadAvg(), time.Now()
	_ = os.Mkdir(b.work, 0o755)
	if b.out, err = os.Create(filepath.Join(tmp, "out")); err != nil {
		fatal(err)
	}
	switch *flagSystemd {
	case "yes":
		b.systemd = true
	case "auto":
		b.systemd = managerAnswers()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		b.cleanup()
		os.Exit(1)
	}()
	rep, err := b.runAll()
	b.cleanup()
	if err != nil {
		fatal(err)
	}
	svgPath := *flagSVG
	if svgPath == "" && *flagOut != "" {
		svgPath = filepath.Join(filepath.Dir(*flagOut), svgName)
	}
	if svg := growthSVG(rep.growth); svg != "" && svgPath != "" {
		if err := os.WriteFile(svgPath, []byte(svg), 0o644); err != nil {
			fatal(err)
		}
		rep.svg = filepath.Base(svgPath)
	}
	md := rep.markdown(b)
	fmt.Print(md)
	if *flagOut != "" {
		if err := writeReport(*flagOut, md); err != nil {
			fatal(err)
		}
	}
}

// svgName is the growth plot's file name, beside the report.
const svgName = "benchmarks-growth.svg"

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchmark:", err)
	os.Exit(1)
}

// managerAnswers reports whether the caller's systemd user manager runs.
func managerAnswers() bool {
	out, _ := exec.Command("systemctl", "--user", "is-system-running").Output()
	s := strings.TrimSpace(string(out))
	return s == "running" || s == "degraded"
}

// env is the environment of every process run: the caller's, with btl's
// files in data and no BTL_BACKEND.
func (b *bench) env(data string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BTL_") && !strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "XDG_DATA_HOME=") {
			env = append(env, e)
		}
	}
	return append(env, "HOME="+data, "XDG_DATA_HOME="+data)
}

// dataDir returns a fresh btl data directory (an XDG_DATA_HOME).
func (b *bench) dataDir(name string) string {
	d := filepath.Join(b.tmp, name)
	_ = os.MkdirAll(d, 0o700)
	b.dataDirs = append(b.dataDirs, d)
	return d
}

// run runs argv in the work directory and measures it, through the
// spawner (see spawn). A non-zero exit is an error: nothing measured here
// is expected to fail.
func (b *bench) run(data string, argv ...string) (sample, error) {
	return b.runEnv(data, nil, argv...)
}

// cmdTimeout bounds each command measured: none takes more than seconds.
const cmdTimeout = 3 * time.Minute

// errStopping is returned by run once cleanup has begun.
var errStopping = errors.New("stopping")

// runEnv is run with extra environment entries.
func (b *bench) runEnv(data string, extra []string, argv ...string) (sample, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping {
		return sample{}, errStopping
	}
	return b.runLocked(data, extra, argv...)
}

func (b *bench) runLocked(data string, extra []string, argv ...string) (sample, error) {
	_ = b.out.Truncate(0)
	_, _ = b.out.Seek(0, 0)
	res := filepath.Join(b.tmp, "result")
	_ = os.Remove(res)
	cmd := exec.Command(b.self, argv...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = b.work, b.out, b.out
	cmd.Env = append(append(b.env(data), extra...), spawnEnv+"="+res)
	// A process group of its own: cleanup, on a signal, and the timeout
	// end the command and whatever it runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Start()
	if err == nil {
		b.cur.Store(int64(cmd.Process.Pid))
		t := time.AfterFunc(cmdTimeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		err = cmd.Wait()
		t.Stop()
		b.cur.Store(0)
	}
	var s sample
	out, _ := os.ReadFile(b.out.Name())
	s.out = string(out)
	var ns, kib, code int64
	if r, rerr := os.ReadFile(res); rerr != nil {
		err = fmt.Errorf("spawner: %v (%v)", rerr, err)
	} else if _, serr := fmt.Sscan(string(r), &ns, &kib, &code); serr != nil || code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	s.ms, s.rss = float64(ns)/1e6, float64(kib)/1024
	if err != nil {
		return s, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(s.out))
	}
	return s, nil
}

// spawnEnv names the file a spawner writes its measurement to.
const spawnEnv = "_BTLBENCH_RESULT"

// spawn is this program re-executed to run one command and measure it:
// wall time from before the fork to after wait4, and the command's peak
// RSS from wait4's rusage. On Linux, a process's ru_maxrss starts at the
// RSS of the process that forked it (exec records the old mm's peak), so
// the measuring process must be small: this one has barely started.
func spawn() {
	res := os.Getenv(spawnEnv)
	os.Unsetenv(spawnEnv)
	code := 127
	var ns int64
	var ru syscall.Rusage
	if path, err := exec.LookPath(os.Args[1]); err == nil {
		t0 := time.Now()
		pid, err := syscall.ForkExec(path, os.Args[1:], &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
		if err == nil {
			var ws syscall.WaitStatus
			for {
				if _, err = syscall.Wait4(pid, &ws, 0, &ru); err != syscall.EINTR {
					break
				}
			}
			ns, code = time.Since(t0).Nanoseconds(), ws.ExitStatus()
		}
	}
	_ = os.WriteFile(res, fmt.Appendf(nil, "%d %d %d\n", ns, ru.Maxrss, code), 0o600)
	os.Exit(0)
}

// uniq returns a sleep argument no other command of this run has: a
// duration of years, starting with the run's tag.
func (b *bench) uniq() string {
	b.seq++
	return fmt.Sprintf("%s%05d", b.tag, b.seq)
}

var (
	reHash = regexp.MustCompile(`\[btl\] Hash: ([0-9a-f]{16})`)
	rePID  = regexp.MustCompile(`\[btl\] Process backgrounded \(PID (\d+)\)`)
)

// start runs btl sleep arg and returns the measurement, hash and PID.
func (b *bench) start(data, backend, arg string) (sample, string, int, error) {
	s, err := b.run(data, b.btl, "--backend", backend, "sleep", arg)
	if err != nil {
		return s, "", 0, err
	}
	h, p := reHash.FindStringSubmatch(s.out), rePID.FindStringSubmatch(s.out)
	if h == nil || p == nil {
		return s, "", 0, fmt.Errorf("btl start: unexpected output %q", s.out)
	}
	pid, _ := strconv.Atoi(p[1])
	return s, h[1], pid, nil
}

// findSleep waits for the process running sleep arg (setsid -f returns
// before its child has executed) and returns its PID.
func findSleep(arg string) (int, error) {
	for range 2000 {
		if pids := sleeps(arg); len(pids) > 0 {
			return pids[0], nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("no process runs sleep %s", arg)
}

// sleeps lists the caller's live processes whose command is sleep with an
// argument that starts with prefix.
func sleeps(prefix string) []int {
	var pids []int
	for _, info := range procs() {
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", info.PID))
		args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		if info.UID == os.Getuid() && len(args) == 2 && filepath.Base(args[0]) == "sleep" && strings.HasPrefix(args[1], prefix) {
			pids = append(pids, info.PID)
		}
	}
	return pids
}

// procs lists the live processes (proc.LookupProc reads /proc/PID/stat).
func procs() []proc.ProcInfo {
	var out []proc.ProcInfo
	names, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range names {
		pid, _ := strconv.Atoi(filepath.Base(dir))
		if info, err := proc.LookupProc(pid); err == nil && !info.Zombie {
			out = append(out, info)
		}
	}
	return out
}

// killWait is the fork kill floor: kill PID, then wait until the process
// has exited (on a pidfd, without polling).
func (b *bench) killWait(data string, pid int) (sample, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return sample{}, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer func() { _ = unix.Close(fd) }()
	s, err := b.run(data, "kill", strconv.Itoa(pid))
	if err != nil {
		return s, err
	}
	// Usually gone before kill has exited; else add the wait.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	t0 := time.Now()
	for timeout := 0; ; timeout = 10000 {
		n, err := unix.Poll(fds, timeout)
		if err == unix.EINTR || err == nil && n == 0 && timeout == 0 {
			continue
		}
		if err != nil || n == 0 {
			return s, fmt.Errorf("PID %d did not exit after kill (%v)", pid, err)
		}
		if timeout > 0 {
			s.ms += float64(time.Since(t0).Nanoseconds()) / 1e6
		}
		return s, nil
	}
}

// cleanup stops everything this run started and removes its files. It
// waits for the command running, if any, and no command starts after it.
func (b *bench) cleanup() {
	if pg := b.cur.Load(); pg != 0 {
		_ = syscall.Kill(-int(pg), syscall.SIGTERM)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping {
		return
	}
	b.stopping = true
	if b.pm2Home != "" {
		if _, err := os.Stat(filepath.Join(b.pm2Home, "pm2.pid")); err == nil {
			if _, err := b.runLocked(b.tmp, []string{"PM2_HOME=" + b.pm2Home}, "pm2", "kill"); err != nil {
				fmt.Fprintln(os.Stderr, "benchmark: cleanup:", err)
			}
		}
	}
	for _, d := range b.dataDirs {
		backends := []string{"fork"}
		if b.systemd {
			backends = append(backends, "systemd")
		}
		for _, be := range backends {
			if _, err := b.runLocked(d, nil, b.btl, "--backend", be, "kill", "--all"); err != nil {
				fmt.Fprintln(os.Stderr, "benchmark: cleanup:", err)
			}
		}
	}
	if b.systemd {
		// btl kill --all stopped btl's units; these are the floors'. The
		// log agents of the data directories, which would otherwise write
		// their last records into the directories removed below, go too.
		units := []string{"btlbench-" + b.tag + "-*"}
		for _, d := range b.dataDirs {
			units = append(units, systemd.AgentUnitName(filepath.Join(d, "btl", "run")))
		}
		_ = exec.Command("systemctl", append([]string{"--user", "stop"}, units...)...).Run()
	}
	for _, pid := range sleeps(b.tag) {
		fmt.Fprintf(os.Stderr, "benchmark: cleanup: PID %d (sleep) left over; killing it\n", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if b.out != nil {
		_ = b.out.Close()
	}
	_ = os.RemoveAll(b.tmp)
}

// writeReport writes md to path, keeping the hand-written part of the file
// there: everything from the line keepMarker on.
func writeReport(path, md string) error {
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), keepMarker); i >= 0 {
			md += "\n" + string(old[i:])
		}
	}
	if !strings.Contains(md, keepMarker) {
		md += "\n" + keepMarker + "\n\n## Analysis\n\n(Not written yet.)\n"
	}
	return os.WriteFile(path, []byte(md), 0o644)
}

const keepMarker = "<!-- Everything below this line is written by hand; the benchmark driver keeps it. -->"
