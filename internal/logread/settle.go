package logread

import (
	"os"
	"time"
)

// How Settle waits: it looks at the log's size every settleEvery until it
// has not changed settleQuiet times in a row, for settleMost at most.
const (
	settleEvery = 10 * time.Millisecond
	settleQuiet = 5
	settleMost  = 500 * time.Millisecond
)

// Settle waits, briefly, until the log at path stops growing: a task that
// has just ended may have output on its way to the file (a log pump runs
// on its own), and what it said last is what explains its end.
func Settle(path string) {
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			return -1
		}
		return fi.Size()
	}
	start := time.Now()
	settle(size, func() time.Duration {
		time.Sleep(settleEvery)
		return time.Since(start)
	})
}

// settle looks at size after each wait, which returns the time waited in
// all, until size has not changed settleQuiet times in a row or
// settleMost has passed; it returns the looks it took.
func settle(size func() int64, wait func() time.Duration) int {
	last, still, looks := size(), 0, 0
	for still < settleQuiet {
		waited := wait()
		looks++
		if n := size(); n != last {
			last, still = n, 0
		} else {
			still++
		}
		if waited >= settleMost {
			break
		}
	}
	return looks
}
