//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pm2Iterations bounds the iterations of the pm2 rows: every pm2 command
// starts a node process (a quarter of a second each).
const pm2Iterations = 10

// pm2 compares btl (fork) with pm2, when pm2 is installed: btl start
// beside `pm2 start`, btl replace beside `pm2 restart`, btl list beside
// `pm2 jlist` with 10 processes each, and pm2's resident daemon beside
// btl's per-task cost. pm2 runs as this user with a PM2_HOME of its own,
// and `pm2 kill` stops its daemon and processes at the end (see cleanup).
func (b *bench) pm2(r *report) error {
	if *flagPM2 == "no" {
		r.notes = append(r.notes, "pm2 was not compared (-pm2 no).")
		return nil
	}
	path, err := exec.LookPath("pm2")
	if err != nil {
		r.notes = append(r.notes, "pm2 is not installed (no `pm2` on PATH): the pm2 rows were skipped; `npm i -g pm2` adds them.")
		return nil
	}
	b.pm2Home = filepath.Join(b.tmp, "pm2")
	b.pm2Version = pm2Version(path)
	d := b.dataDir("pm2-btl")
	pm := func(args ...string) []string { return append([]string{path}, args...) }
	// The daemon starts with the first command: not timed.
	if _, err := b.runPM2(d, pm("ping")...); err != nil {
		return err
	}
	iters := min(*flagN, pm2Iterations)
	start := &row{name: "start, fork, beside pm2", floor: "`pm2 start sleep -- …`"}
	repl := &row{name: "replace, fork, beside pm2", floor: "`pm2 restart NAME`"}
	for i := range iters {
		ba, pa := b.uniq(), b.uniq()
		var hash string
		err := inOrder(i, func() error {
			s, h, _, err := b.start(d, "fork", ba)
			start.btl, hash = append(start.btl, s), h
			return err
		}, func() error {
			s, err := b.runPM2(d, pm("start", "sleep", "--name", pa, "--", pa)...)
			start.base = append(start.base, s)
			return err
		})
		if err != nil {
			return err
		}
		err = inOrder(i, func() error {
			s, _, _, err := b.start(d, "fork", ba)
			repl.btl = append(repl.btl, s)
			if err == nil && !strings.Contains(s.out, "Killing previous process") {
				err = fmt.Errorf("btl did not replace: %q", s.out)
			}
			return err
		}, func() error {
			s, err := b.runPM2(d, pm("restart", pa)...)
			repl.base = append(repl.base, s)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := b.run(d, b.btl, "--backend", "fork", "kill", hash); err != nil {
			return err
		}
		if _, err := b.runPM2(d, pm("delete", pa)...); err != nil {
			return err
		}
	}
	r.rows = append(r.rows, start, repl)

	const tasks = 10
	var sups []int
	for range tasks {
		arg := b.uniq()
		_, _, pid, err := b.start(d, "fork", arg)
		if err != nil {
			return err
		}
		if _, err := b.runPM2(d, pm("start", "sleep", "--name", arg, "--", arg)...); err != nil {
			return err
		}
		sups = append(sups, pid)
	}
	list := &row{name: "list, fork, 10 running tasks, beside pm2", floor: "`pm2 jlist`, 10 processes"}
	for i := range iters {
		err := inOrder(i, b.measure(&list.btl, d, b.btl, "--backend", "fork", "list"), func() error {
			s, err := b.runPM2(d, pm("jlist")...)
			list.base = append(list.base, s)
			return err
		})
		if err != nil {
			return err
		}
	}
	r.rows = append(r.rows, list)

	time.Sleep(time.Second)
	god := memRow{name: "pm2: its daemon (node), one for all 10 running processes"}
	pidB, err := os.ReadFile(filepath.Join(b.pm2Home, "pm2.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidB)))
	if err != nil || pid == 0 {
		return fmt.Errorf("pm2: no daemon PID in %s (%v)", b.pm2Home, err)
	}
	addMem(&god, pid)
	fork := memRow{name: "fork: the supervisors of 10 running tasks, all btl keeps alive for them"}
	for _, p := range sups {
		m := memRow{}
		if err := addSupervisor(&m, p, b.btl); err != nil {
			return err
		}
		fork.rss, fork.pss = append(fork.rss, m.rss...), append(fork.pss, m.pss...)
	}
	fork.rss, fork.pss = []float64{sum(fork.rss)}, []float64{sum(fork.pss)}
	r.helpers = append(r.helpers, fork, god)
	if _, err := b.run(d, b.btl, "--backend", "fork", "kill", "--all"); err != nil {
		return err
	}
	_, err = b.runPM2(d, pm("kill")...)
	return err
}

// runPM2 is run with pm2's PM2_HOME.
func (b *bench) runPM2(data string, argv ...string) (sample, error) {
	return b.runEnv(data, []string{"PM2_HOME=" + b.pm2Home}, argv...)
}

// pm2Version reads pm2's version from its package.json: `pm2 --version`
// would start a daemon in the caller's own ~/.pm2.
func pm2Version(path string) string {
	bin, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "(version unknown)"
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "..", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil || pkg.Version == "" {
		return "(version unknown)"
	}
	return pkg.Version
}
