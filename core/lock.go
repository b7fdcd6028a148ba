package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"btl/internal/regular"
)

func (s *Store) lock() (func(), error) {
	ctx := s.Context
	if ctx == nil {
		ctx = context.Background()
	}
	unlock, err := LockFileWait(ctx, s.lockPath(), LockWaitNotice, func(holder string) {
		if s.Warn != nil {
			s.Warn("waiting for the state lock, held by " + holder + " (Ctrl-C gives up)")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return unlock, nil
}

// LockWaitNotice is how long btl waits for the state lock before it says
// who holds it.
const LockWaitNotice = time.Second

// LockFile takes an exclusive flock on path (created 0600 if missing, never
// through a symbolic link, and only a regular file), waiting for it, and
// returns the function that releases it. The lock also ends with the
// process.
func LockFile(path string) (unlock func(), err error) {
	return LockFileWait(context.Background(), path, 0, nil)
}

// ErrBusy reports a lock that another process holds, to a caller that
// does not wait for it.
var ErrBusy = errors.New("held by another process")

// TryLockFile is LockFile that does not wait: when another process holds
// the lock it returns an error wrapping ErrBusy.
func TryLockFile(path string) (unlock func(), err error) {
	f, err := regular.Open(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("%s: %w", path, ErrBusy)
		}
		return nil, err
	}
	recordHolder(f)
	return func() { _ = f.Close() }, nil
}

// ErrLockWait reports a wait for a lock that ended before the lock was
// taken, because ctx ended (SIGINT, SIGTERM).
var ErrLockWait = errors.New("gave up waiting for the lock")

// LockFileWait is LockFile that gives up, with an error wrapping
// ErrLockWait, as soon as ctx ends. When the lock is held by another
// process for longer than notice, it calls waiting (if not nil) once with
// a description of the holder. The holder of a lock taken by btl is
// recorded in the lock file: its PID and command line.
func LockFileWait(ctx context.Context, path string, notice time.Duration, waiting func(holder string)) (unlock func(), err error) {
	f, err := regular.Open(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		err = waitLock(ctx, f, notice, waiting)
		if errors.Is(err, ErrLockWait) {
			return nil, err // f is the waiting goroutine's now
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	recordHolder(f)
	return func() { _ = f.Close() }, nil
}

// recordHolder writes who holds the lock on f into it, for those who
// wait; a full disk only costs them the name.
func recordHolder(f *os.File) {
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(holderLine()), 0)
	}
}

// waitLock waits for the flock on f in a goroutine, so that the wait can
// end with ctx. A goroutine whose wait was given up closes f once its
// flock returns, which releases the lock at once.
func waitLock(ctx context.Context, f *os.File, notice time.Duration, waiting func(string)) error {
	var mu sync.Mutex
	abandoned := false
	done := make(chan error, 1)
	go func() {
		var err error
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if err != unix.EINTR {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			_ = f.Close()
			return
		}
		done <- err
	}()
	var tick <-chan time.Time
	if waiting != nil {
		t := time.NewTimer(notice)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-done:
			return err
		case <-tick:
			tick = nil
			waiting(lockHolder(f))
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			select {
			case err := <-done:
				// Taken just now: give it back.
				if err == nil {
					_ = f.Close()
				}
			default:
				abandoned = true
			}
			return fmt.Errorf("%w held by %s: %w", ErrLockWait, lockHolder(f), ctx.Err())
		}
	}
}

// holderLine is what a lock's holder records in the lock file: its PID
// and command line.
func holderLine() string {
	args := slices.Clone(os.Args)
	if len(args) > 0 {
		args[0] = filepath.Base(args[0])
	}
	cmd := CommandLine(args)
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	return strconv.Itoa(os.Getpid()) + " " + cmd + "\n"
}

// lockHolder describes the process recorded in the lock file f, when it
// still runs.
func lockHolder(f *os.File) string {
	b := make([]byte, 512)
	n, _ := f.ReadAt(b, 0)
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	pidStr, cmd, _ := strings.Cut(line, " ")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || unix.Kill(pid, 0) == unix.ESRCH {
		return "another process"
	}
	cmd = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(cmd, "?"))
	return fmt.Sprintf("PID %d (%s)", pid, cmd)
}
