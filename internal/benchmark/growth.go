//go:build linux

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// growthOps are the operations timed against the number of running tasks.
var growthOps = []string{"start", "replace", "kill", "list"}

// growth is the cost of each operation with a growing number of real
// running tasks, for one backend.
type growth struct {
	backend string
	counts  []int
	ms      map[string][][]float64 // by op, then by index into counts
}

// growthCounts parses the -growth flag: ascending task counts.
func growthCounts() ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(*flagGrowth, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-growth %q: want ascending task counts, such as 1,10,100,300", *flagGrowth)
		}
		out = append(out, n)
	}
	return out, nil
}

// growth times start, replace, kill and list with each count of running
// tasks: real tasks (`btl sleep` with distinct arguments, each its own
// process and, for systemd, its own unit), started before the count's
// iterations and kept running through them. start starts one more task
// and kills it untimed; replace replaces a running task; kill kills one
// and starts it again untimed, so the count holds; list lists them all.
func (b *bench) growth(r *report, backend string, counts []int) error {
	d := b.dataDir("growth-" + backend)
	g := &growth{backend: backend, counts: counts, ms: map[string][][]float64{}}
	var args []string // of the running tasks
	hashes := map[string]string{}
	for _, n := range counts {
		for len(args) < n {
			arg := b.uniq()
			_, h, _, err := b.start(d, backend, arg)
			if err != nil {
				return err
			}
			args, hashes[arg] = append(args, arg), h
		}
		var start, repl, kill, list []float64
		for i := range *flagGrowthN {
			s, h, _, err := b.start(d, backend, b.uniq())
			switch {
			case refused(err):
				r.failed[backend+", start"]++
			case err != nil:
				return err
			default:
				start = append(start, s.ms)
				if _, err := b.run(d, b.btl, "--backend", backend, "kill", h); err != nil {
					return err
				}
			}
			arg := args[(i*7919)%n] // spread over the running tasks
			s, _, _, err = b.start(d, backend, arg)
			if err == nil && !strings.Contains(s.out, "Killing previous process") {
				err = fmt.Errorf("btl did not replace: %q", s.out)
			}
			if refused(err) {
				// The old instance is stopped, the new one did not start.
				r.failed[backend+", replace"]++
				if err := b.startAgain(r, d, backend, arg); err != nil {
					return err
				}
			} else if err != nil {
				return err
			} else {
				repl = append(repl, s.ms)
			}
			s, err = b.run(d, b.btl, "--backend", backend, "kill", hashes[arg])
			if err == nil && !strings.Contains(s.out, "Process killed") {
				err = fmt.Errorf("btl kill did not kill: %q", s.out)
			}
			if err != nil {
				return err
			}
			kill = append(kill, s.ms)
			if err := b.startAgain(r, d, backend, arg); err != nil {
				return err
			}
			s, err = b.run(d, b.btl, "--backend", backend, "list")
			if err != nil {
				return err
			}
			if got := strings.Count(s.out, "\n") - 1; got != n {
				return fmt.Errorf("btl list shows %d tasks, want %d", got, n)
			}
			list = append(list, s.ms)
		}
		for op, xs := range map[string][]float64{"start": start, "replace": repl, "kill": kill, "list": list} {
			g.ms[op] = append(g.ms[op], xs)
		}
		fmt.Fprintf(b.progress, "benchmark: %s with %d running tasks: start %.1f, replace %.1f, kill %.1f, list %.1f ms\n",
			backend, n, median(start), median(repl), median(kill), median(list))
	}
	r.growth = append(r.growth, g)
	_, err := b.run(d, b.btl, "--backend", backend, "kill", "--all")
	return err
}

// growthTarget is the target of op and whether it was met: start, replace
// and kill flat within 25% from the fewest tasks to the most, list of 300
// tasks within 40 ms.
func (g *growth) target(op string) (string, string) {
	med := func(k int) float64 { return median(g.ms[op][k]) }
	last := len(g.counts) - 1
	switch op {
	case "start", "replace", "kill":
		if last == 0 {
			return "", ""
		}
		return fmt.Sprintf("%d tasks ≤ 1.25× %d", g.counts[last], g.counts[0]), pass(med(last) <= 1.25*med(0))
	case "list":
		if k := slices.Index(g.counts, 300); k >= 0 {
			return "300 tasks ≤ 40 ms", pass(med(k) <= 40)
		}
	}
	return "", ""
}

// startAgain starts the task just killed again (untimed). Where btl
// refuses at once (a systemd unit of the task still loaded right after
// the kill), it tries again for a while, and the report says how often.
func (b *bench) startAgain(r *report, d, backend, arg string) error {
	var err error
	for try := range 40 {
		if _, _, _, err = b.start(d, backend, arg); err == nil {
			if try > 0 {
				r.refused[backend]++
			}
			return nil
		}
		if !refused(err) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// refused reports whether err is systemd refusing a task's unit because a
// unit of that name is still loaded (the stopped instance's).
func refused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "already loaded")
}
