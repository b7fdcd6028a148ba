package core

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"btl/internal/regular"
)

// runsEvent is one event a backend reports: a start (end nil), or an
// end, after which the test checks whether a restart was decided.
type runsEvent struct {
	after    time.Duration // since the previous event
	end      *Status       // nil: a run starts
	stopping bool
	final    bool // RecordFinal: the restart did not happen after all
	restart  bool // want, after an end
}

func TestRunsRecord(t *testing.T) {
	exit0, exit1, killed := Status{State: Exited}, Status{State: Exited, Code: 1}, Status{State: Signaled, Signal: 9}
	start := func(after time.Duration) runsEvent { return runsEvent{after: after} }
	end := func(after time.Duration, st Status, restart bool) runsEvent {
		return runsEvent{after: after, end: &st, restart: restart}
	}
	onFailure2 := RestartPolicy{Mode: RestartOnFailure, Max: 2}
	cases := []struct {
		name   string
		policy RestartPolicy
		events []runsEvent
		want   Status
		final  bool
	}{
		{"running", RestartPolicy{}, []runsEvent{start(0)},
			Status{State: Running, PID: 100}, false},
		{"exit code, no policy", RestartPolicy{}, []runsEvent{start(0), end(time.Second, exit1, false)},
			Status{State: Exited, Code: 1, PID: 100}, true},
		{"on-failure after exit 0", onFailure2, []runsEvent{start(0), end(time.Second, exit0, false)},
			Status{State: Exited, PID: 100}, true},
		{"between two runs", onFailure2, []runsEvent{start(0), end(time.Second, exit1, true)},
			Status{State: Running, PID: 100, LastExit: "exited 1"}, false},
		{"restarted", onFailure2, []runsEvent{start(0), end(time.Second, exit1, true), start(time.Second)},
			Status{State: Running, PID: 101, Restarts: 1, LastExit: "exited 1"}, false},
		{"crash loop", onFailure2, []runsEvent{
			start(0), end(time.Second, exit1, true), start(time.Second), end(time.Second, killed, true),
			start(time.Second), end(time.Second, exit1, false)},
			Status{State: Exited, Code: 1, PID: 102, Restarts: 2, LastExit: "exited 1", CrashLoop: true}, true},
		{"a long run resets the restarts in a row", onFailure2, []runsEvent{
			start(0), end(time.Second, exit1, true), start(time.Second), end(time.Second, exit1, true),
			start(time.Second), end(RestartResetAfter, exit1, true), start(time.Second)},
			Status{State: Running, PID: 103, Restarts: 3, LastExit: "exited 1"}, false},
		{"stopped during a run", RestartPolicy{Mode: RestartAlways, Max: 5}, []runsEvent{
			start(0), {after: time.Second, end: &killed, stopping: true}},
			Status{State: Signaled, Signal: 9, PID: 100}, true},
		{"stopped during the pause", onFailure2, []runsEvent{
			start(0), end(time.Second, exit1, true), start(time.Second), end(time.Second, exit1, true), {final: true}},
			Status{State: Exited, Code: 1, PID: 101, Restarts: 1, LastExit: "exited 1"}, true},
		{"an end whose start nobody recorded", RestartPolicy{}, []runsEvent{end(0, exit1, false)},
			Status{State: Exited, Code: 1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Dirs{Run: t.TempDir()}
			token := strings.Repeat("a", HashLen) + "-0011223344556677"
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			pid := 100
			for i, e := range c.events {
				now = now.Add(e.after)
				switch {
				case e.final:
					if err := RecordFinal(d, token); err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
				case e.end == nil:
					var log strings.Builder
					if _, err := RecordStart(d, token, c.policy, &log, Proc{PID: pid, Start: 7}, now, "run it"); err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
					if got, ok := ParseStartMarker(log.String()); !ok || !got.Equal(now) {
						t.Errorf("event %d: start marker %q", i, log.String())
					}
					pid++
				default:
					_, restart, err := RecordEnd(d, token, c.policy, *e.end, now, e.stopping)
					if err != nil || restart != e.restart {
						t.Fatalf("event %d: RecordEnd = %v, %v; want restart %v", i, restart, err, e.restart)
					}
				}
			}
			r, err := ReadRuns(d, token)
			if err != nil {
				t.Fatal(err)
			}
			if got, final := r.Status(); got != c.want || final != c.final {
				t.Errorf("Status() = %+v, %v; want %+v, %v", got, final, c.want, c.final)
			}
			if r.Policy != c.policy.String() {
				t.Errorf("policy %q; want %q", r.Policy, c.policy.String())
			}
			fi, err := os.Stat(RunsFile(d, token))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("record: %v, %v; want mode 0600", fi, err)
			}
		})
	}
}

// TestRunsRecordOddFile: a directory where the record belongs is an
// error that names it, for the reader and for the writer.
func TestRunsRecordOddFile(t *testing.T) {
	d := Dirs{Run: t.TempDir()}
	token := strings.Repeat("b", HashLen) + "-0011223344556677"
	if _, err := ReadRuns(d, token); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no record: %v; want os.ErrNotExist", err)
	}
	if err := os.Mkdir(RunsFile(d, token), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRuns(d, token); !errors.Is(err, regular.ErrNotRegular) || !strings.Contains(err.Error(), RunsFile(d, token)) {
		t.Errorf("ReadRuns of a directory: %v", err)
	}
	if _, _, err := RecordEnd(d, token, RestartPolicy{}, Status{State: Exited}, time.Now(), false); !errors.Is(err, regular.ErrNotRegular) {
		t.Errorf("RecordEnd over a directory: %v", err)
	}
}
