package systemd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"btl/core"
)

// Timing of a mirror.
const (
	// mirrorMinGap spaces copies while a task prints without pause, so a
	// chatty task costs at most a few journalctl runs a second.
	mirrorMinGap = 100 * time.Millisecond
	// mirrorSafety is how often a mirror copies even without a wake-up.
	mirrorSafety = 30 * time.Second
	// mirrorDrain is how long a mirror keeps copying once the task has
	// ended: journald may still be writing the task's last lines.
	mirrorDrain = 700 * time.Millisecond
	// mirrorPoll is how often a mirror checks that the task still runs.
	mirrorPoll = 250 * time.Millisecond
)

// MaybeMirror runs a log mirror and exits when the process was started as
// one (MirrorEnv set); otherwise it returns at once. Call it first thing in
// main, and in TestMain of tests that start systemd tasks.
func MaybeMirror() {
	cfg, ok := os.LookupEnv(MirrorEnv)
	if !ok {
		return
	}
	os.Unsetenv(MirrorEnv)
	var j journal
	if err := json.Unmarshal([]byte(cfg), &j); err != nil {
		fmt.Fprintf(os.Stderr, "btl log mirror: bad %s: %v\n", MirrorEnv, err)
		os.Exit(2)
	}
	os.Exit(j.mirror())
}

// quitSignal makes a mirror exit without a last copy: btl sends it before
// stopping a task whose journal it copies itself right after.
const quitSignal = syscall.SIGUSR1

// mirror keeps the log file up to date while the task runs: a follower
// (`journalctl -f`) wakes it when the unit logs, and each wake-up runs
// sync. It returns once the task has ended, or on SIGTERM, after a last
// drain; on quitSignal at once.
func (j *journal) mirror() int {
	// One channel for every signal, so that they are seen in the order
	// they came: a quitSignal followed by a SIGTERM still means quit.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, quitSignal)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	wake := make(chan struct{}, 1)
	go j.follow(ctx, wake)

	task := core.Proc{PID: j.PID, Start: j.Start}
	poll := time.NewTicker(mirrorPoll)
	defer poll.Stop()
	safety := time.NewTicker(mirrorSafety)
	defer safety.Stop()
	var deadline <-chan time.Time // set once the mirror is winding down
	copyNow := func() {
		if err := j.sync(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "btl log mirror: %v\n", err)
		}
	}
	// No copy yet: the follower prints whatever the task logged before it
	// started, which wakes the loop.
	for {
		select {
		case <-wake:
			copyNow()
			time.Sleep(mirrorMinGap)
		case <-safety.C:
			copyNow()
		case <-poll.C:
			if deadline == nil && !task.Verify() {
				deadline = time.After(mirrorDrain)
			}
		case s := <-sig:
			if s == quitSignal {
				return 0
			}
			// Stopped (by systemd: logout, `systemctl --user stop`): the
			// task's unit is stopped before this one (Before=), so this
			// copy takes the task's last lines.
			copyNow()
			return 0
		case <-deadline:
			copyNow()
			return 0
		}
	}
}

// follow runs `journalctl -f` from the saved progress on and signals wake
// whenever it prints, restarting it should it exit.
func (j *journal) follow(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		args := append([]string{"--follow", "--no-tail", "--output=cat"}, j.progress().from()...)
		cmd := j.command(ctx, append(args, j.matches()...)...)
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "btl log mirror: journalctl: %v\n", err)
		} else {
			buf := make([]byte, 32<<10)
			for {
				if _, err := out.Read(buf); err != nil {
					if err != io.EOF && ctx.Err() == nil {
						fmt.Fprintf(os.Stderr, "btl log mirror: journalctl: %v\n", err)
					}
					break
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
			cmd.Wait()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
