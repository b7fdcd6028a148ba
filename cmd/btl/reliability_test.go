package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
	"btl/internal/proc"
	"btl/internal/proc/proctest"
)

// tokenProcs returns the live processes of this user whose environment
// carries BTL_INSTANCE=<token> for one of this test's tasks (HOME marks
// them), by token.
func tokenProcs(t *testing.T, home string) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	proctest.Scan(os.Getuid(), func(pid int, env [][]byte) bool {
		if !slices.ContainsFunc(env, func(e []byte) bool { return string(e) == "HOME="+home }) {
			return false
		}
		for _, kv := range env {
			if tok, ok := bytes.CutPrefix(kv, []byte(core.EnvInstance+"=")); ok {
				out[string(tok)] = append(out[string(tok)], pid)
			}
		}
		return true
	})
	return out
}

func TestConcurrentSameCommand(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = u.btl(dir, "sh", "-c", `echo $$ >> pids; exec sleep 100`) })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("start %d: %+v", i, r)
		}
	}
	st := u.state()
	if len(st.Processes) != 1 {
		t.Fatalf("%d entries, want 1", len(st.Processes))
	}
	var last int
	for _, e := range st.Processes {
		last = e.PID
	}
	// Instances replaced before they got to run wrote nothing; the last
	// one does.
	var written []int
	coretest.Eventually(t, 10*time.Second, "the last instance to run", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		written = pids(t, strings.Fields(string(b)))
		return slices.Contains(written, last)
	})
	for _, p := range written {
		if p != last && coretest.Alive(p) {
			t.Errorf("instance %d still alive beside %d", p, last)
		}
	}
	if !coretest.Alive(last) {
		t.Errorf("the recorded instance %d is not running", last)
	}
}

func TestConcurrentDistinctCommands(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if r := u.btl(dir, "sleep", strconv.Itoa(200+i)); r.code != 0 {
				t.Errorf("start %d: %+v", i, r)
			}
		})
	}
	wg.Wait()
	st := u.state()
	if len(st.Processes) != n {
		t.Fatalf("%d entries after %d concurrent distinct starts: updates were lost", len(st.Processes), n)
	}
	for _, e := range st.Processes {
		if !coretest.Alive(e.PID) {
			t.Errorf("entry %s: PID %d not running", e.Hash, e.PID)
		}
	}
}

// TestKilledMidway kills btl with SIGKILL at random moments of start,
// replace, kill and clean. Afterwards state.json must parse, and every
// process a task started must be visible to btl (and so stoppable).
func TestKilledMidway(t *testing.T) {
	u := newUser(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("BTL_TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BTL_TEST_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("random moments from seed %d (BTL_TEST_SEED=%d repeats them)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	cmds := [][]string{
		{"sh", "-c", "sleep 100 & exec sleep 101"},
		{"sleep", "102"},
		{"kill", "--all"},
		{"clean"},
	}
	for i := range 60 {
		args := cmds[rng.IntN(len(cmds))]
		cmd := exec.Command(os.Args[0], args...)
		cmd.Dir, cmd.Env = dirs[rng.IntN(len(dirs))], u.env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(15000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if i%10 == 9 {
			checkAllVisible(t, u)
		}
	}
	checkAllVisible(t, u)
	u.ok(dirs[0], "kill", "--all")
	if left := tokenProcs(t, u.home); len(left) > 0 {
		t.Fatalf("processes left after kill --all: %v", left)
	}
}

func checkAllVisible(t *testing.T, u *user) {
	t.Helper()
	r := u.btl(t.TempDir(), "list")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("list after a killed btl: %+v", r)
	}
	st := u.state()
	tokens := map[string]*core.Task{}
	for _, e := range st.Processes {
		tokens[e.Token] = e
	}
	for tok, ps := range tokenProcs(t, u.home) {
		e := tokens[tok]
		if e == nil {
			t.Fatalf("processes %v of instance %s run, but btl does not track them; list:\n%s", ps, tok, r.stdout)
		}
	}
}

func TestReadOnlyStateDir(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	keep := u.start(dir, "sleep", "100")
	before, _ := os.ReadFile(filepath.Join(u.dataDir(), "state.json"))
	os.Chmod(u.dataDir(), 0o500)
	defer os.Chmod(u.dataDir(), 0o700)
	r := u.btl(dir, "sh", "-c", "echo $$ > started; exec sleep 100")
	if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "Error: ") {
		t.Errorf("start with a read-only state dir: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("the task ran although its start could not be recorded")
	}
	os.Chmod(u.dataDir(), 0o700)
	after, _ := os.ReadFile(filepath.Join(u.dataDir(), "state.json"))
	if !bytes.Equal(before, after) {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
	if !coretest.Alive(keep.pid) {
		t.Error("another task was harmed")
	}
}

func TestUnwritableLogDir(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	u.start(dir, "sleep", "100")
	before, _ := os.ReadFile(filepath.Join(u.dataDir(), "state.json"))
	logs := filepath.Join(u.dataDir(), "logs")
	os.Chmod(logs, 0o500)
	defer os.Chmod(logs, 0o700)
	r := u.btl(dir, "sh", "-c", "echo $$ > started; exec sleep 100")
	if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("start with an unwritable log dir: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("the task ran although its log could not be opened")
	}
	after, _ := os.ReadFile(filepath.Join(u.dataDir(), "state.json"))
	if !bytes.Equal(before, after) {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
}

func TestLogSymlinkRefused(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", "echo secret-output; exec sleep 100"}
	s := u.start(dir, argv...)
	u.ok(dir, "kill", s.hash)
	target := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(target, []byte("precious\n"), 0o600)
	os.Remove(s.log)
	os.Symlink(target, s.log)
	r := u.btl(dir, argv...)
	if r.code == 0 || !strings.Contains(r.stderr, "symbolic link") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("start through a symlinked log: %+v", r)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("write went through the symlink: %q", b)
	}
}

func TestUnsafeDataDir(t *testing.T) {
	u := newUser(t)
	os.MkdirAll(u.dataDir(), 0o700)
	os.Chmod(u.dataDir(), 0o777)
	r := u.btl(t.TempDir(), "list")
	if r.code != 1 || !strings.Contains(r.stderr, "writable by group or others") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("list with a world-writable data dir: %+v", r)
	}
}

func TestLogCap(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	const max = 32 << 10
	// 3,000 lines of 100 bytes: ten times the cap, and within journald's
	// default rate limit (10,000 lines in 30 s), past which journald
	// itself drops the lines of user services.
	script := `i=1000; while [ $i -lt 4000 ]; do printf 'line %d %091d\n' $i 0; i=$((i+1)); done; echo last line`
	r := u.btlEnv(dir, []string{"BTL_LOG_MAX=32K"}, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	m, _ := parseStart(r.stdout)
	logf := m.log
	coretest.Eventually(t, 30*time.Second, "the last line", func() bool {
		b, _ := os.ReadFile(logf)
		return bytes.HasSuffix(b, []byte("last line\n"))
	})
	for _, f := range []string{logf, logf + ".1"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max {
			t.Errorf("%s is %d bytes, over the %d cap", f, fi.Size(), max)
		}
	}
	old, _ := os.ReadFile(logf + ".1")
	cur, _ := os.ReadFile(logf)
	all := string(old) + string(cur)
	if !regexp.MustCompile(`line 3999 0+\nlast line\n$`).MatchString(all) || strings.Contains(all, "line 1000 ") {
		t.Errorf("rotation did not keep the newest output")
	}
	r = u.btlEnv(dir, []string{"BTL_LOG_MAX=lots"}, "true")
	if r.code != 1 || !strings.Contains(r.stderr, "BTL_LOG_MAX") {
		t.Errorf("bad BTL_LOG_MAX: %+v", r)
	}
}

// TestDiskFull runs btl with its data on a small file system that is full.
// make test (as root) mounts one and names it in BTL_TEST_FULLFS.
func TestDiskFull(t *testing.T) {
	u := newUser(t)
	fs := coretest.FullFS(t)
	data := filepath.Join(fs, "data-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(data) })
	env := []string{"XDG_DATA_HOME=" + data}
	dir := t.TempDir()
	r := u.btlEnv(dir, env, "sleep", "101")
	if r.code != 0 {
		t.Fatalf("start before the disk is full: %+v", r)
	}
	state := filepath.Join(data, "btl", "state.json")
	before, _ := os.ReadFile(state)
	filler := filepath.Join(fs, "filler-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { os.Remove(filler) })
	f, _ := os.Create(filler)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	r = u.btlEnv(dir, env, "sh", "-c", "echo $$ > started; exec sleep 100")
	if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("start on a full disk: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("the task ran although its start could not be recorded")
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Errorf("state changed on a full disk:\n%s\n%s", before, after)
	}
	if r := u.btlEnv(dir, env, "list"); r.code != 0 || !strings.Contains(r.stdout, "sleep 101") {
		t.Errorf("list on a full disk: %+v", r)
	}
	os.Remove(filler)
	u.btlEnv(dir, env, "kill", "--all")
}

func TestDeletedDirectories(t *testing.T) {
	u := newUser(t)
	gone := t.TempDir()
	s := u.start(gone, "sleep", "100")
	os.Remove(gone)
	// Run from a directory that no longer exists.
	cmd := exec.Command(os.Args[0], "sleep", "5")
	cmd.Dir, cmd.Env = gone, u.env
	if err := cmd.Start(); err == nil {
		t.Fatal("started a process in a deleted directory")
	}
	sh := exec.Command("sh", "-c", `mkdir d && cd d && rmdir ../d && exec "$0" sleep 5`, os.Args[0])
	sh.Dir, sh.Env = t.TempDir(), u.env
	out, err := sh.CombinedOutput()
	if code := sh.ProcessState.ExitCode(); err == nil || code != 1 || !strings.HasPrefix(string(out), "Error: current directory: ") || strings.Count(string(out), "\n") != 1 {
		t.Errorf("btl from a deleted directory: exit %d, %q", code, out)
	}
	// The task's own directory is gone: list and kill still work; restart
	// says why it cannot.
	if out := u.ok(t.TempDir(), "list"); !strings.Contains(out, s.hash) {
		t.Errorf("list: %s", out)
	}
	r := u.btl(t.TempDir(), "restart", s.hash)
	if r.code != 1 || !strings.Contains(r.stderr, "working directory") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("restart in a deleted directory: %+v", r)
	}
	u.ok(t.TempDir(), "kill", s.hash)
}

func TestFileModes(t *testing.T) {
	u := newUser(t)
	s := u.start(t.TempDir(), "sleep", "100")
	for path, want := range map[string]os.FileMode{
		u.dataDir():                              0o700 | os.ModeDir,
		filepath.Join(u.dataDir(), "logs"):       0o700 | os.ModeDir,
		filepath.Join(u.dataDir(), "state.json"): 0o600,
		s.log:                                    0o600,
	} {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode(), err, want)
		}
	}
}

// TestUnreachableBackendBlocksReplace: a task started with a backend that
// cannot be reached here may still run, so btl neither starts a second
// instance beside it nor forgets it.
func TestUnreachableBackendBlocksReplace(t *testing.T) {
	if backendUnderTest() != "fork" {
		t.Skip("needs launchd to be unreachable: the fork run of this suite does it")
	}
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", "echo $$ > started; exec sleep 100"}
	hash := core.Hash(mustReal(t, dir), core.CommandLine(argv))
	os.MkdirAll(u.dataDir(), 0o700)
	entry := fmt.Sprintf(`{"processes": {"%s": {"pid": 4242, "user_id": %d, "command": "x", "cwd": "/", "backend": "launchd", "unit": "btl.%s"}}}`, hash, os.Getuid(), hash)
	os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(entry), 0o600)
	r := u.btl(dir, argv...)
	if r.code != 1 || !strings.Contains(r.stderr, "backend not available here: task "+hash+" was started with launchd") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("replace of a task whose backend is unreachable: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("a second instance started")
	}
	if u.state().Processes[hash] == nil {
		t.Error("the entry was dropped")
	}
}

// TestStateLostReadopts deletes state.json under a running task: the next
// btl list finds the task again from the backend's own view, and kill
// still stops its whole tree. Another data directory of the same user
// does not adopt it.
func TestStateLostReadopts(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sh", "-c", `sleep 100 & echo $! > child; exec sleep 101`)
	kids := pids(t, waitFileLines(t, filepath.Join(dir, "child"), 1))
	if out := makeUser(t).ok(dir, "list"); strings.Contains(out, s.hash) {
		t.Errorf("another data directory adopted the task:\n%s", out)
	}
	os.Remove(filepath.Join(u.dataDir(), "state.json"))
	out := u.ok(dir, "list", "-o", "wide")
	// The command as recorded by the service manager, or (fork) as the
	// process now shows it.
	if !regexp.MustCompile(`(?m)^` + s.hash + ` +- +` + strconv.Itoa(s.pid) + ` +running +\S+ +\S+ +\S+ +\S+ +\d+ +\d+s ago +(` + regexp.QuoteMeta(s.command) + `|sleep 101) +` + regexp.QuoteMeta(mustReal(t, dir)) + ` +\S+ +\S+ +\S+$`).MatchString(out) {
		t.Fatalf("list after state.json was deleted:\n%s", out)
	}
	u.ok(dir, "kill", s.hash[:6])
	for _, p := range append(kids, s.pid) {
		if coretest.Alive(p) {
			t.Errorf("process %d survived kill of the re-adopted task", p)
		}
	}
}

// TestSurvivorReported freezes a task in a cgroup v1 freezer, where it
// cannot die even from SIGKILL until thawed: kill must say so with the PID,
// exit non-zero and keep the entry. make test (as root) makes a freezer
// cgroup the test user may use and names it in BTL_TEST_FREEZER.
func TestSurvivorReported(t *testing.T) {
	freezer := os.Getenv("BTL_TEST_FREEZER")
	if freezer == "" {
		coretest.Missing(t, "BTL_TEST_FREEZER is not set: make test makes a freezer cgroup for this test when run as root")
	}
	if backendUnderTest() == "systemd" {
		t.Skip("systemd keeps a unit's processes in its own cgroup; the fork and launchd runs cover this")
	}
	// One freezer for every test binary that runs beside this one (make
	// test runs the CLI suite against two backends at once): held for the
	// test, so that no other test thaws it or joins it.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "btl-test-freezer-"+strconv.Itoa(os.Getuid())+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // last: after the thaw below
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	u := newUser(t)
	dir := t.TempDir()
	s := u.start(dir, "sleep", "100")
	state := filepath.Join(freezer, "freezer.state")
	if err := os.WriteFile(filepath.Join(freezer, "cgroup.procs"), []byte(strconv.Itoa(s.pid)), 0); err != nil {
		t.Fatalf("move the task into the freezer: %v", err)
	}
	thaw := func() { os.WriteFile(state, []byte("THAWED"), 0) }
	t.Cleanup(func() { thaw(); syscall.Kill(s.pid, syscall.SIGKILL) })
	if err := os.WriteFile(state, []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "the task to freeze", func() bool {
		b, _ := os.ReadFile(state)
		return strings.TrimSpace(string(b)) == "FROZEN"
	})
	r := u.btl(dir, "kill", s.hash)
	want := "Error: " + s.hash + ": processes survived SIGKILL: [" + strconv.Itoa(s.pid) + "]\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("kill of a task that survives SIGKILL: %+v; want stderr %q", r, want)
	}
	if u.state().Processes[s.hash] == nil {
		t.Error("the entry of a task still alive was dropped")
	}
	thaw()
	coretest.Eventually(t, 10*time.Second, "the thawed task to die of its pending SIGKILL", func() bool {
		return !coretest.Alive(s.pid)
	})
}

// TestMainExitedChildrenRun: a fork task whose main process exited while
// its children run is "running (main exited)": clean keeps it, a replace
// stops what is left (one copy), and kill --all stops it.
func TestMainExitedChildrenRun(t *testing.T) {
	if backendUnderTest() != "fork" {
		t.Skip("with systemd and launchd the task ends with its main process; the fork run covers this")
	}
	u := newUser(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", "sleep 920 & echo $! >> children; echo started"}
	s := u.start(dir, argv...)
	first := pids(t, waitFileLines(t, filepath.Join(dir, "children"), 1))[0]
	row := regexp.MustCompile(`(?m)^` + s.hash + ` +- +running \(main exited\) `)
	coretest.Eventually(t, 10*time.Second, "list to say running (main exited)", func() bool {
		return row.MatchString(u.ok(dir, "list"))
	})
	u.ok(dir, "clean")
	if out := u.ok(dir, "list"); !row.MatchString(out) {
		t.Errorf("clean forgot a task whose children run:\n%s", out)
	}
	s2 := u.start(dir, argv...)
	if s2.killed != s.pid {
		t.Errorf("the replace did not report stopping the previous instance (PID %d): killed %d", s.pid, s2.killed)
	}
	second := pids(t, waitFileLines(t, filepath.Join(dir, "children"), 2))[1]
	if coretest.Alive(first) {
		t.Errorf("the replaced instance's child %d still runs: two copies", first)
	}
	coretest.Eventually(t, 10*time.Second, "list to say running (main exited)", func() bool {
		return row.MatchString(u.ok(dir, "list"))
	})
	if out := u.ok(dir, "kill", "--all"); !strings.Contains(out, "Killed 1 process") {
		t.Errorf("kill --all:\n%s", out)
	}
	if coretest.Alive(second) {
		t.Errorf("kill --all left the child %d running", second)
	}
}

// TestForgedEntryWithTrueStartTime: a state.json edited to carry another
// process of the same user, with its true PID and start time, never gets
// that process signalled: the process does not carry the task's token.
func TestForgedEntryWithTrueStartTime(t *testing.T) {
	if backendUnderTest() != "fork" {
		t.Skip("the entry names a fork task; the fork run covers this")
	}
	victim := exec.Command("sleep", "100")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	info, err := proc.LookupProc(victim.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token string }{
		{"another token", `, "token": "%s-0123456789abcdef"`},
		{"no token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t)
			dir := t.TempDir()
			argv := []string{"sleep", "100"}
			hash := core.Hash(mustReal(t, dir), core.CommandLine(argv))
			token := tc.token
			if token != "" {
				token = fmt.Sprintf(token, hash)
			}
			entry := fmt.Sprintf(`{"processes": {"%s": {"pid": %d, "proc_start": %d, "user_id": %d, "command": "sleep 100", "cwd": %q, "backend": "fork"%s}}}`, hash, info.PID, info.Start, os.Getuid(), mustReal(t, dir), token)
			os.MkdirAll(u.dataDir(), 0o700)
			os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(entry), 0o600)
			if out := u.ok(dir, "list"); strings.Contains(out, "running") {
				t.Errorf("a foreign process is shown as running:\n%s", out)
			}
			os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(entry), 0o600)
			u.ok(dir, "kill", hash)
			os.WriteFile(filepath.Join(u.dataDir(), "state.json"), []byte(entry), 0o600)
			if s := u.start(dir, argv...); s.killed != 0 {
				t.Errorf("start claimed to kill the foreign PID %d", s.killed)
			}
			u.ok(dir, "kill", hash)
			if !coretest.Alive(victim.Process.Pid) {
				t.Fatal("btl signalled a process it did not start")
			}
		})
	}
}
