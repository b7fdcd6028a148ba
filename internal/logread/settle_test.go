package logread

import (
	"path/filepath"
	"testing"
	"time"
)

func TestSettle(t *testing.T) {
	for _, c := range []struct {
		name  string
		sizes []int64 // the size at each look; the last one stays
		looks int
	}{
		{"a quiet log", []int64{10}, settleQuiet},
		{"no log", []int64{-1}, settleQuiet},
		{"a log that grows, then stops", []int64{1, 2, 3, 4}, 3 + settleQuiet},
		{"a log that stops growing for a while", []int64{1, 1, 1, 2}, 3 + settleQuiet},
		{"a log that never stops", nil, int(settleMost / settleEvery)},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			size := func() int64 {
				defer func() { n++ }()
				if c.sizes == nil {
					return int64(n) // grows at every look
				}
				return c.sizes[min(n, len(c.sizes)-1)]
			}
			var waited time.Duration
			wait := func() time.Duration {
				waited += settleEvery
				return waited
			}
			if got := settle(size, wait); got != c.looks {
				t.Errorf("%d looks, want %d", got, c.looks)
			}
		})
	}
	// The real thing returns for a log that does not change.
	Settle(filepath.Join(t.TempDir(), "none.log"))
}
