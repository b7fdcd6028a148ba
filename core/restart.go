package core

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RestartMode says when a task that ended is started again.
type RestartMode string

// The restart modes of --restart.
const (
	RestartNo        RestartMode = ""           // never (the default; "no" on the command line)
	RestartOnFailure RestartMode = "on-failure" // after a non-zero exit or a death by signal
	RestartAlways    RestartMode = "always"     // after any end
)

// DefaultMaxRestarts is how many restarts in a row a task gets before btl
// gives up on it (a crash loop), unless --restart on-failure:N says.
const DefaultMaxRestarts = 10

// MaxRestarts bounds the N of --restart on-failure:N and always:N. The
// backends derive their own limits from it (systemd: a start limit of N+1
// starts within N minutes), which must not overflow.
const MaxRestarts = 10000

// Restart backoff: the pause before a restart starts at RestartDelay and
// doubles after each quick end up to RestartMaxDelay; a run that lasted
// RestartResetAfter resets it and the count of restarts in a row.
const (
	RestartDelay      = 100 * time.Millisecond
	RestartMaxDelay   = 10 * time.Second
	RestartResetAfter = 60 * time.Second
)

// RestartPolicy is a task's --restart: when to start it again, and how
// many restarts in a row it gets (Max) before btl gives up.
type RestartPolicy struct {
	Mode RestartMode
	Max  int
}

// ErrBadRestart is wrapped by ParseRestart's errors.
var ErrBadRestart = errors.New("bad --restart")

// ParseRestart parses "no", "always", "on-failure" or "on-failure:N"
// (N from 1 to MaxRestarts); "always:N" bounds always the same way.
func ParseRestart(s string) (RestartPolicy, error) {
	mode, n, hasN := strings.Cut(s, ":")
	p := RestartPolicy{Mode: RestartMode(mode), Max: DefaultMaxRestarts}
	switch p.Mode {
	case "no":
		if hasN {
			return RestartPolicy{}, fmt.Errorf("%w %q: no takes no count", ErrBadRestart, s)
		}
		return RestartPolicy{}, nil
	case RestartOnFailure, RestartAlways:
	default:
		return RestartPolicy{}, fmt.Errorf("%w %q: use no, on-failure[:N] or always[:N]", ErrBadRestart, s)
	}
	if hasN {
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 || v > MaxRestarts {
			return RestartPolicy{}, fmt.Errorf("%w %q: N must be a whole number from 1 to %d", ErrBadRestart, s, MaxRestarts)
		}
		p.Max = v
	}
	return p, nil
}

// String renders p as ParseRestart reads it ("on-failure:10"), "" for no
// restart.
func (p RestartPolicy) String() string {
	if p.Mode == RestartNo {
		return ""
	}
	return fmt.Sprintf("%s:%d", p.Mode, p.Max)
}

// Enabled reports whether p restarts anything.
func (p RestartPolicy) Enabled() bool { return p.Mode != RestartNo }

// Restarts reports whether a run that ended with st is restarted by p
// (the count of restarts in a row aside).
func (p RestartPolicy) Restarts(st Status) bool {
	switch p.Mode {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return !(st.State == Exited && st.Code == 0)
	}
	return false
}

// Backoff is the pause before the n-th restart in a row (n from 1):
// RestartDelay doubled n-1 times, at most RestartMaxDelay.
func Backoff(n int) time.Duration {
	d := RestartDelay
	for i := 1; i < n && d < RestartMaxDelay; i++ {
		d *= 2
	}
	return min(d, RestartMaxDelay)
}

// RestartCount renders n restarts: "1 restart", "10 restarts".
func RestartCount(n int) string {
	if n == 1 {
		return "1 restart"
	}
	return strconv.Itoa(n) + " restarts"
}
