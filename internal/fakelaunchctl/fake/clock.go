//go:build linux

package fake

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clock is the time launchd's timers run on in the fake: how long a
// booted-out label lingers, how long bootstrap answers 5 after a bootout,
// the spawning phase, ThrottleInterval. By default it is the machine's
// clock; with FAKE_LAUNCHCTL_CLOCK it is a file the test drives, shared by
// every launchctl call and helper of the state directory. ExitTimeOut
// (how long a real process gets to exit after SIGTERM) stays on real time:
// it waits on a real process.
type clock interface {
	now() time.Time
	// sleepUntil returns once now() is t or later.
	sleepUntil(t time.Time)
}

// realClock is the machine's clock.
type realClock struct{}

func (realClock) now() time.Time         { return time.Now() }
func (realClock) sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// clockEpoch is the time a test's clock shows before it is first advanced.
var clockEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fileClock is a clock that moves only when AdvanceClock is called on its
// file (by the test, or by every call with FAKE_LAUNCHCTL_CLOCK_STEP). The
// file holds the nanoseconds elapsed since clockEpoch, in decimal.
type fileClock struct{ path string }

func (c fileClock) now() time.Time {
	d, _ := readClock(c.path)
	return clockEpoch.Add(d)
}

// sleepUntil polls the file: a helper waiting on the clock costs a read
// every few milliseconds.
func (c fileClock) sleepUntil(t time.Time) {
	for c.now().Before(t) {
		time.Sleep(2 * time.Millisecond)
	}
}

// readClock returns the elapsed time the clock file holds (0 if absent).
func readClock(path string) (time.Duration, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fake clock %s: %w", path, err)
	}
	return time.Duration(n), nil
}

// AdvanceClock moves the test clock kept in file (the value of
// FAKE_LAUNCHCTL_CLOCK) forward by d, and returns the time elapsed on it
// since it started. Concurrent calls are serialised with a lock file
// beside it.
func AdvanceClock(file string, d time.Duration) (time.Duration, error) {
	lf, err := os.OpenFile(file+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() { _ = lf.Close() }() // releases the lock
	for {
		err = unix.Flock(int(lf.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	cur, err := readClock(file)
	if err != nil {
		return 0, err
	}
	cur += d
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(int64(cur), 10)+"\n"), 0o644); err != nil {
		return 0, err
	}
	return cur, os.Rename(tmp, file)
}

// newClock returns the clock FAKE_LAUNCHCTL_CLOCK asks for (real time when
// it is unset) and the step every call advances it by
// (FAKE_LAUNCHCTL_CLOCK_STEP; 0 when unset).
func newClock() (clock, time.Duration) {
	file := os.Getenv(envClock)
	if file == "" {
		return realClock{}, 0
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs // helpers run in /
	}
	step, _ := time.ParseDuration(os.Getenv(envClockStep))
	return fileClock{path: file}, max(step, 0)
}
