//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"btl/backend/systemd"
	"btl/core"
	"btl/internal/proc"
	"btl/internal/regular"
)

// row is one timed benchmark: btl's samples and, pair by pair, its floor's.
type row struct {
	name, floor string
	btl, base   []sample
	diff        bool    // compare as btl − floor in ms, not btl / floor
	limit       float64 // target: ratio (or difference in ms, or ms when abs)
	abs         bool    // the target bounds btl's median itself, in ms
}

// memRow is a memory figure in MiB: peak RSS of a command, or the resident
// memory (VmRSS and PSS) of a per-task helper process.
type memRow struct {
	name     string
	rss, pss []float64
	limit    float64 // MiB; 0: no target
}

type report struct {
	rows           []*row
	peaks, helpers []memRow
	growth         []*growth
	idle           []idleRow // systemd: what silent tasks cost
	svg            string    // file name of the growth plot, beside the report
	notes          []string
	refused        map[string]int // by backend: starts refused right after a kill (see startAgain)
	failed         map[string]int // by "backend, operation": timed commands refused the same way
}

// measure returns a function that runs argv and appends the sample to dst.
func (b *bench) measure(dst *[]sample, data string, argv ...string) func() error {
	return func() error {
		s, err := b.run(data, argv...)
		*dst = append(*dst, s)
		return err
	}
}

// inOrder runs fns starting at index i modulo their number, so that each
// goes first equally often.
func inOrder(i int, fns ...func() error) error {
	for k := range fns {
		if err := fns[(i+k)%len(fns)](); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) runAll() (*report, error) {
	r := &report{refused: map[string]int{}, failed: map[string]int{}}
	if *flagOnly == "growth" {
		return r, b.runGrowth(r)
	}
	d := b.dataDir("proc")
	pf := &row{name: "process floor: `btl --version`", floor: "`true`"}
	for i := range *flagN {
		if err := inOrder(i, b.measure(&pf.btl, d, b.btl, "--version"), b.measure(&pf.base, d, "true")); err != nil {
			return nil, err
		}
	}
	r.rows = append(r.rows, pf)
	r.peaks = append(r.peaks, memRow{name: "`true` (what the measurement itself adds: see Method)", rss: rssOf(pf.base)},
		memRow{name: "`btl --version`", rss: rssOf(pf.btl)})
	backends := []string{"fork"}
	if b.systemd {
		backends = append(backends, "systemd")
	} else {
		r.notes = append(r.notes, "No systemd user manager answered: the systemd rows were skipped.")
	}
	for _, be := range backends {
		if err := b.lifecycle(r, be); err != nil {
			return nil, err
		}
	}
	for _, be := range backends {
		if err := b.helperMemory(r, be); err != nil {
			return nil, err
		}
	}
	if b.systemd {
		if err := b.idleCost(r, []int{10, 300}); err != nil {
			return nil, err
		}
	}
	if err := b.list(r); err != nil {
		return nil, err
	}
	if err := b.pm2(r); errors.Is(err, errStopping) {
		return nil, err
	} else if err != nil {
		// pm2 is not btl: a failure of its own costs its rows, not the run.
		r.notes = append(r.notes, fmt.Sprintf("The pm2 comparison stopped on an error: %v", err))
	}
	return r, b.runGrowth(r)
}

// runGrowth runs the growth rows of every backend.
func (b *bench) runGrowth(r *report) error {
	counts, err := growthCounts()
	if err != nil || len(counts) == 0 {
		return err
	}
	backends := []string{"fork"}
	if b.systemd {
		backends = append(backends, "systemd")
	}
	for _, be := range backends {
		if err := b.growth(r, be, counts); err != nil {
			return err
		}
	}
	return nil
}

// lifecycle times start, replace and kill with one backend, each against
// its floor, one task alive at a time.
func (b *bench) lifecycle(r *report, backend string) error {
	d := b.dataDir(backend)
	start := &row{name: "start, " + backend, floor: "`setsid -f sleep …`", limit: 1.3}
	kill := &row{name: "kill, " + backend, floor: "`kill PID` + wait until gone"}
	if backend == "systemd" {
		start.floor, start.limit = "`systemd-run --user --collect sleep …`", 1.2
		kill.floor = "`systemctl --user stop UNIT`"
	}
	repl := &row{name: "replace, " + backend, floor: "start, " + backend + " (same iteration)", diff: true, limit: 10}
	for i := range *flagN {
		fa, ba, ca := b.uniq(), b.uniq(), b.uniq()
		unitA := "btlbench-" + b.tag + "-" + fa + ".service"
		var hashB, hashC string
		btlStart := func() error {
			s, h, _, err := b.start(d, backend, ba)
			start.btl, hashB = append(start.btl, s), h
			return err
		}
		floor := []string{"setsid", "-f", "sleep", fa}
		if backend == "systemd" {
			floor = []string{"systemd-run", "--user", "--collect", "--quiet", "--unit=" + unitA, "sleep", fa}
		}
		if err := inOrder(i, b.measure(&start.base, d, floor...), btlStart); err != nil {
			return err
		}
		err := inOrder(i, func() error {
			s, _, _, err := b.start(d, backend, ba)
			repl.btl = append(repl.btl, s)
			if err == nil && !strings.Contains(s.out, "Killing previous process") {
				err = fmt.Errorf("btl did not replace: %q", s.out)
			}
			return err
		}, func() error {
			s, h, _, err := b.start(d, backend, ca)
			repl.base, hashC = append(repl.base, s), h
			return err
		})
		if err != nil {
			return err
		}
		floorKill := b.measure(&kill.base, d, "systemctl", "--user", "stop", unitA)
		if backend == "fork" {
			pid, err := findSleep(fa)
			if err != nil {
				return err
			}
			floorKill = func() error {
				s, err := b.killWait(d, pid)
				kill.base = append(kill.base, s)
				return err
			}
		}
		err = inOrder(i, floorKill, func() error {
			s, err := b.run(d, b.btl, "--backend", backend, "kill", hashB)
			kill.btl = append(kill.btl, s)
			if err == nil && !strings.Contains(s.out, "Process killed") {
				err = fmt.Errorf("btl kill did not kill: %q", s.out)
			}
			return err
		})
		if err != nil {
			return err
		}
		if _, err := b.run(d, b.btl, "--backend", backend, "kill", hashC); err != nil {
			return err
		}
	}
	r.rows = append(r.rows, start, repl, kill)
	r.peaks = append(r.peaks, memRow{name: "`btl sleep …` (start, " + backend + ")", rss: rssOf(start.btl), limit: 20},
		memRow{name: start.floor + " (floor)", rss: rssOf(start.base)})
	return nil
}

func rssOf(ss []sample) []float64 {
	var out []float64
	for _, s := range ss {
		out = append(out, s.rss)
	}
	return out
}

// helperMemory measures the resident memory of what btl keeps alive for
// running tasks, a second after they started: per task for fork (the
// supervisor, the task's parent); for systemd, with 10 tasks running, the
// data directory's one log agent (btl-logs-<8 hex>.service's main process)
// and the `journalctl -f` it runs, which is all btl keeps alive there.
func (b *bench) helperMemory(r *report, backend string) error {
	tasks := 3
	if backend == "systemd" {
		tasks = 10
	}
	d := b.dataDir(backend + "-mem")
	var pids []int
	for range tasks {
		_, _, pid, err := b.start(d, backend, b.uniq())
		if err != nil {
			return err
		}
		pids = append(pids, pid)
	}
	time.Sleep(time.Second)
	sup := memRow{name: "fork: supervisor (btl re-executed), per task"}
	agent := memRow{name: "systemd: the log agent (btl re-executed), one for all 10 running tasks"}
	jc := memRow{name: "systemd: the agent's `journalctl -f`, one for all 10 running tasks"}
	total := memRow{name: "systemd: everything btl keeps alive for 10 running tasks (agent + journalctl)"}
	if backend == "fork" {
		for k := range tasks {
			if err := addSupervisor(&sup, pids[k], b.btl); err != nil {
				return err
			}
		}
		r.helpers = append(r.helpers, sup)
	} else {
		unit := systemd.AgentUnitName(filepath.Join(d, "btl", "run"))
		out, err := exec.Command("systemctl", "--user", "show", "-p", "MainPID", "--value", unit).Output()
		m, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || m == 0 {
			return fmt.Errorf("no main PID for %s (%v)", unit, err)
		}
		addMem(&agent, m)
		addMem(&total, m)
		for _, c := range procs() {
			if c.PPID == m {
				addMem(&jc, c.PID)
				addMem(&total, c.PID)
			}
		}
		total.rss = []float64{sum(total.rss)}
		total.pss = []float64{sum(total.pss)}
		r.helpers = append(r.helpers, agent, jc, total)
	}
	_, err := b.run(d, b.btl, "--backend", backend, "kill", "--all")
	return err
}

// addSupervisor adds the resident memory of the supervisor of the fork
// task whose main process is pid to m.
func addSupervisor(m *memRow, pid int, btl string) error {
	info, _ := proc.LookupProc(pid)
	pp := info.PPID
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pp)); exe != btl {
		return fmt.Errorf("parent %d of task %d is %q, not the btl supervisor", pp, pid, exe)
	}
	addMem(m, pp)
	return nil
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// addMem adds the VmRSS and PSS of pid, in MiB, to m.
func addMem(m *memRow, pid int) {
	kib := func(file, key string) float64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, key+":"); ok {
				n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				return n
			}
		}
		return 0
	}
	m.rss = append(m.rss, kib("status", "VmRSS")/1024)
	m.pss = append(m.pss, kib("smaps_rollup", "Pss")/1024)
}

// list times `btl list` (fork backend) against `btl --version`, the cost
// of starting the binary at all, with 1,000 entries written into
// state.json, running or ended: a synthetic load (the growth rows list
// real running tasks).
func (b *bench) list(r *report) error {
	// The one live process every "running" entry points at.
	// Its environment is empty, as after `env -i`, so that btl judges it by
	// PID and start time alone (it cannot carry every entry's token).
	live := exec.Command("/bin/sleep", b.uniq())
	live.Env = []string{}
	if err := live.Start(); err != nil {
		return err
	}
	defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
	info, err := proc.LookupProc(live.Process.Pid)
	if err != nil {
		return err
	}
	const n = 1000
	for _, p := range []*core.Proc{{PID: info.PID, Start: info.Start}, nil} {
		// Not in b.dataDirs: cleanup has nothing to stop there, and
		// btl kill --all would stop the live process 1,000 times.
		d, name := filepath.Join(b.tmp, fmt.Sprintf("list-%d-%v", n, p != nil)), fmt.Sprintf("list, %d ended tasks (synthetic: state.json entries)", n)
		if p != nil {
			name = fmt.Sprintf("list, %d running tasks (synthetic: state.json entries, one live process)", n)
		}
		if err := fillState(d, n, b.work, p); err != nil {
			return err
		}
		if err := b.listRow(r, d, name, n, 50); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) listRow(r *report, d, name string, n int, limit float64) error {
	// One untimed run first: the first list after a start records statuses.
	s, err := b.run(d, b.btl, "--backend", "fork", "list")
	if err != nil {
		return err
	}
	if got := strings.Count(s.out, "\n") - 1; got != n {
		return fmt.Errorf("btl list shows %d tasks, want %d", got, n)
	}
	lr := &row{name: name, floor: "`btl --version`", diff: true, limit: limit, abs: true}
	for i := range *flagN {
		if err := inOrder(i, b.measure(&lr.btl, d, b.btl, "--backend", "fork", "list"), b.measure(&lr.base, d, b.btl, "--version")); err != nil {
			return err
		}
	}
	r.rows = append(r.rows, lr)
	if n == 1000 {
		short, _, _ := strings.Cut(strings.TrimPrefix(name, "list, "), " (")
		r.peaks = append(r.peaks, memRow{name: "`btl list` (" + short + ", synthetic)", rss: rssOf(lr.btl), limit: 20})
	}
	return nil
}

// fillState writes n entries into the state of the btl data directory
// under xdg, with btl's own code (core.Store), as fork tasks leave them:
// running ones with the identity of live, else ended ones with a PID no
// process has (above pid_max), a status, and the supervisor's exit record.
func fillState(xdg string, n int, cwd string, live *core.Proc) error {
	dirs := core.DirsAt(filepath.Join(xdg, "btl"))
	if err := dirs.Ensure(); err != nil {
		return err
	}
	store := &core.Store{Dir: dirs.Data}
	t0 := time.Now().UTC().Add(-time.Hour)
	pidMax := 4194304 // no PID is above pid_max
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		pidMax, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return store.Update(func(st *core.State) error {
		for i := range n {
			argv := []string{"npm", "run", "dev", "--", "--port", strconv.Itoa(3000 + i)}
			cmd := core.CommandLine(argv)
			h := core.Hash(cwd, cmd)
			t := &core.Task{
				Hash: h, UserID: os.Getuid(), Command: cmd, Cwd: cwd, StartedAt: t0.Add(time.Duration(i) * time.Second),
				LogFile: dirs.LogFile(h), Argv: argv, Backend: "fork", Token: fmt.Sprintf("%s-%016x", h, i), LogDirect: true,
			}
			if live != nil {
				t.PID, t.ProcStart, t.Helper = live.PID, live.Start, &core.Proc{PID: live.PID, Start: live.Start}
			} else {
				t.PID, t.ProcStart = pidMax+1+2*i, 1000+uint64(i)
				t.Helper = &core.Proc{PID: pidMax + 2 + 2*i, Start: 1000 + uint64(i)}
				t.Status = &core.Status{State: core.Exited, Code: i % 3}
				rec, _ := json.Marshal(t.Status)
				if err := regular.WriteFileAtomic(filepath.Join(dirs.Run, t.Token+".exit"), rec, 0o600); err != nil {
					return err
				}
			}
			st.Processes[h] = t
		}
		return nil
	})
}
