package launchd

import (
	"strconv"
	"strings"

	"btl/core"
)

// topLevel returns the "key = value" lines of a `launchctl print` dump that
// describe the service itself: those with exactly one leading tab. Nested
// blocks reuse keys such as "state" and "pid" for other things.
func topLevel(dump string) map[string]string {
	fields := map[string]string{}
	for line := range strings.SplitSeq(dump, "\n") {
		rest, ok := strings.CutPrefix(line, "\t")
		if !ok || strings.HasPrefix(rest, "\t") {
			continue
		}
		if k, v, ok := strings.Cut(rest, " = "); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// parsePrint turns a `launchctl print <service>` dump into a status:
// running with its pid, exited with "last exit code = N" (or "N: NAME"),
// killed with "last terminating signal = Name: N", failed when launchd
// gives only "last exit reason = ..." (a job it killed or could not
// spawn, with no code) or "job state = spawn failed", starting otherwise
// (launchd is spawning it, or has not recorded an exit yet).
func parsePrint(dump string) core.Status {
	f := topLevel(dump)
	state := f["state"]
	if pid, err := strconv.Atoi(f["pid"]); state == "running" && err == nil && pid > 0 {
		return core.Status{State: core.Running, PID: pid}
	}
	if st, ok := lastEnd(f); ok {
		return st
	}
	if _, ok := f["last exit reason"]; ok || strings.Contains(dump, "\n\tjob state = spawn failed\n") {
		return core.Status{State: core.Failed}
	}
	// Any other state (spawn scheduled, spawning, xpcproxy, waiting,
	// SIGTERMed, penalty box, a state newer macOS adds) is a loaded job
	// that has not run yet or is being torn down: only `print` exiting
	// with 113 means there is no such job.
	return core.Status{State: core.Starting}
}

// idle reports whether a dump shows a loaded job that is not running,
// has never run, and is not being spawned: "state = not running" with
// "last exit code = (never exited)" (or none). Right after a bootstrap
// launchd may show that for a moment; a job that stays so is not run.
func idle(dump string) bool {
	f := topLevel(dump)
	code, ok := f["last exit code"]
	return f["state"] == "not running" && (!ok || code == "(never exited)") && f["last exit reason"] == "" && f["last terminating signal"] == ""
}

// exitDetail is what a dump says of how the job's last run ended, for
// messages: its "last exit reason", "job state" or "state" line.
func exitDetail(dump string) string {
	f := topLevel(dump)
	for _, k := range []string{"last exit reason", "job state", "state"} {
		if v := f[k]; v != "" {
			return k + " = " + v
		}
	}
	return "no state"
}

// lastEnd is how the job's last run ended, from the top-level fields of a
// `launchctl print` dump: "last terminating signal = Name: N" or "last
// exit code = N" (or "N: NAME"); false when it has not ended yet.
func lastEnd(f map[string]string) (core.Status, bool) {
	if v, ok := f["last terminating signal"]; ok {
		if i := strings.LastIndex(v, ":"); i >= 0 {
			if sig, err := strconv.Atoi(strings.TrimSpace(v[i+1:])); err == nil {
				return core.Status{State: core.Signaled, Signal: sig}, true
			}
		}
	}
	if v, ok := f["last exit code"]; ok {
		num, _, _ := strings.Cut(v, ":")
		if code, err := strconv.Atoi(strings.TrimSpace(num)); err == nil {
			return core.Status{State: core.Exited, Code: code}, true
		}
	}
	return core.Status{}, false
}
