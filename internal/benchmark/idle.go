package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"btl/backend/systemd"
)

// idleRow is what btl keeps alive for silent systemd tasks costs while
// nothing happens: CPU seconds and read calls (D-Bus messages and journal
// lines received) per idle minute, and its PSS.
type idleRow struct {
	tasks, killed int
	cpu           float64 // seconds per idle minute
	reads         int64   // read calls per idle minute
	pss           float64 // MiB, at the end of the window
	replaces      int     // replaces made with the tasks running
	failed        int     // of those, how many failed
}

// idleWindow is how long the idle cost is measured.
var idleWindow = time.Minute

// idleCost measures, for each count, the idle cost of that many silent
// systemd tasks running with as many killed ones behind them, then
// replaces one of them 100 times in a row with all of them running.
func (b *bench) idleCost(r *report, counts []int) error {
	for _, n := range counts {
		d := b.dataDir(fmt.Sprintf("systemd-idle-%d", n))
		for range n {
			if _, _, _, err := b.start(d, "systemd", b.uniq()); err != nil {
				return err
			}
		}
		if _, err := b.run(d, b.btl, "--backend", "systemd", "kill", "--all"); err != nil {
			return err
		}
		for range n {
			if _, _, _, err := b.start(d, "systemd", b.uniq()); err != nil {
				return err
			}
		}
		unit := systemd.AgentUnitName(filepath.Join(d, "btl", "run"))
		out, err := exec.Command("systemctl", "--user", "show", "-p", "MainPID", "--value", unit).Output()
		agent, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || agent == 0 {
			return fmt.Errorf("no main PID for %s (%v)", unit, err)
		}
		pids := []int{agent}
		for _, c := range procs() {
			if c.PPID == agent {
				pids = append(pids, c.PID)
			}
		}
		time.Sleep(2 * time.Second) // the starts' and kills' signals settle
		cpu0, reads0 := usage(pids)
		time.Sleep(idleWindow)
		cpu1, reads1 := usage(pids)
		row := idleRow{tasks: n, killed: n}
		perMin := float64(time.Minute) / float64(idleWindow)
		row.cpu = (cpu1 - cpu0) * perMin
		row.reads = int64(float64(reads1-reads0) * perMin)
		var m memRow
		for _, p := range pids {
			addMem(&m, p)
		}
		row.pss = sum(m.pss)
		arg := b.uniq()
		for range 100 {
			row.replaces++
			if _, err := b.run(d, b.btl, "--backend", "systemd", "sleep", arg); err != nil {
				row.failed++
			}
		}
		r.idle = append(r.idle, row)
		if _, err := b.run(d, b.btl, "--backend", "systemd", "kill", "--all"); err != nil {
			return err
		}
	}
	return nil
}

// usage sums the CPU seconds (user and system) and read calls of pids.
func usage(pids []int) (cpu float64, reads int64) {
	for _, p := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil {
			s := string(b)
			if f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]); len(f) > 12 {
				u, _ := strconv.ParseFloat(f[11], 64)
				k, _ := strconv.ParseFloat(f[12], 64)
				cpu += (u + k) / 100 // USER_HZ
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p)); err == nil {
			for l := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(l, "syscr:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					reads += n
				}
			}
		}
	}
	return cpu, reads
}

// idleMarkdown renders the idle rows.
func (rep *report) idleMarkdown(p func(string, ...any)) {
	if len(rep.idle) == 0 {
		return
	}
	p("\n## systemd: what silent tasks cost\n\n")
	p("Everything btl keeps alive for systemd tasks (the data directory's log agent and its\n")
	p("`journalctl -f`), over %v with nothing happening, N silent tasks running and N killed\n", idleWindow)
	p("ones behind them; then 100 replaces in a row of one more task, all N still running.\n")
	p("Read calls count what the agent received: D-Bus messages and journal lines.\n\n")
	p("| tasks running / killed | CPU s per idle minute | target | | read calls per idle minute | PSS MiB | replaces failed |\n")
	p("| --- | ---: | --- | --- | ---: | ---: | ---: |\n")
	for _, x := range rep.idle {
		p("| %d / %d | %.2f | ≤ 0.05 | %s | %d | %.1f | %d of %d |\n", x.tasks, x.killed, x.cpu, pass(x.cpu <= 0.05), x.reads, x.pss, x.failed, x.replaces)
	}
}
