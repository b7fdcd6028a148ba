package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/cobra"

	"btl/core"
	"btl/internal/proc"
	"btl/internal/reexec"
)

// watcherEnv selects the watcher part of btl (see internal/reexec): its
// value is the hash of the task to watch.
const watcherEnv = "BTL_WATCHER"

func init() { reexec.Register(watcherEnv, runWatcher) }

// startWatcher starts the watcher of the task with the given hash: btl
// re-executed, in a session of its own (ps shows `btl watch <hash>`).
// It returns once the watcher watches w's paths, so that no change made
// after the start is missed. The task's record names it; it replaces the
// task on a change and exits once the record no longer names it (kill,
// stop, clean, a run without --watch).
func startWatcher(hash string, w *core.Watch) (*core.Proc, error) {
	exe, err := reexec.SelfExe("")
	if err != nil {
		return nil, err
	}
	conf, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	confR, confW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start watcher: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		_ = confR.Close()
		_ = confW.Close()
		return nil, fmt.Errorf("start watcher: %w", err)
	}
	defer func() { _ = confW.Close(); _ = readyR.Close() }()
	cmd := exec.Command(exe, "watch", hash)
	cmd.Env = append(os.Environ(), watcherEnv+"="+hash)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{confR, readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = confR.Close()
	_ = readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start watcher: %w", err)
	}
	p := &core.Proc{PID: cmd.Process.Pid}
	if info, err := proc.LookupProc(p.PID); err == nil {
		p.Start = info.Start
	}
	// Reap it if this process outlives it.
	go func() { _ = cmd.Wait() }()
	_, _ = confW.Write(conf)
	_ = confW.Close()
	if b, _ := io.ReadAll(readyR); string(b) != "watching" {
		return nil, fmt.Errorf("the watcher could not watch %s", printable(strings.Join(w.Paths, ", ")))
	}
	return p, nil
}

// watchPoll is how often a watcher checks that the task's record still
// names it.
const watchPoll = 500 * time.Millisecond

// runWatcher is the watcher of the task with the given hash.
func runWatcher(hash string) int {
	os.Unsetenv(watcherEnv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	info, err := proc.LookupProc(os.Getpid())
	if err != nil {
		return 1
	}
	self := core.Proc{PID: os.Getpid(), Start: info.Start}
	// What to watch comes on fd 3; "watching" on fd 4 says it is watched.
	confR, readyW := os.NewFile(3, "watch-config"), os.NewFile(4, "watch-ready")
	var conf core.Watch
	err = json.NewDecoder(io.LimitReader(confR, 16<<20)).Decode(&conf)
	_ = confR.Close()
	if err != nil {
		return 1
	}
	tw, err := newTreeWatch(conf.Paths, newIgnorer(conf.Paths, conf.Ignore))
	if err != nil {
		return 1
	}
	defer tw.close()
	_, _ = readyW.WriteString("watching")
	_ = readyW.Close()
	e := &env{stdout: io.Discard, stderr: io.Discard}
	c := &cobra.Command{Use: "watch"}
	c.SetContext(ctx)
	if err := e.setup(c); err != nil {
		return 1
	}
	// The start that made this watcher records it once the task runs.
	var t *core.Task
	for deadline := time.Now().Add(30 * time.Second); ; {
		var gone bool
		if t, gone = e.watchedBy(hash, self); t != nil || gone || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(20 * time.Millisecond):
		}
	}
	if t == nil {
		return 0
	}
	check := time.NewTicker(watchPoll)
	defer check.Stop()
	var debounce <-chan time.Time
	var changed string
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-check.C:
			if t, _ := e.watchedBy(hash, self); t == nil {
				return 0
			}
		case p, ok := <-tw.changes:
			if !ok {
				return 1
			}
			changed = p
			debounce = time.After(t.Watch.Debounce)
		case <-debounce:
			debounce = nil
			if err := e.watchReplace(c, hash, self, changed); errors.Is(err, core.ErrNotWatcher) {
				return 0
			}
		}
	}
}

// watchedBy returns the task with the given hash when its record names
// self as its watcher; gone is set when no task has that hash.
func (e *env) watchedBy(hash string, self core.Proc) (t *core.Task, gone bool) {
	st, err := e.mgr.Snapshot()
	if err != nil {
		return nil, false
	}
	t = st.Processes[hash]
	if t == nil {
		// Read again under the lock before taking it for gone: a read
		// without it may fall between a save and the removal of the
		// start's intent, and see the task in neither. While another
		// btl holds the lock, it is not taken for gone either: the next
		// look decides.
		if err := e.mgr.Look(func(st *core.State) { t = st.Processes[hash] }); err != nil || t == nil {
			return nil, err == nil
		}
	}
	if t.Watch == nil || t.Watch.Watcher == nil || *t.Watch.Watcher != self {
		return nil, false
	}
	return t, false
}

// watchReplace replaces the watched task as a re-run does (its tree
// stopped first), after a change to path.
func (e *env) watchReplace(c *cobra.Command, hash string, self core.Proc, path string) error {
	t, env, recorded, err := e.mgr.Restart(hash, true)
	if err != nil {
		return err
	}
	if t.Watch == nil {
		return core.ErrNotWatcher
	}
	e.restart, _ = core.ParseRestart(t.Restart)
	e.taskBackend = t.BackendName()
	e.envFiles = t.EnvFiles
	w := *t.Watch
	w.Watcher, w.LastChange, w.LastPath, w.Replaces = &self, time.Now().UTC(), path, w.Replaces+1
	e.watch = &w
	if !recorded {
		env = os.Environ()
	}
	return e.run(c, t.Argv, t.Cwd, env)
}

// treeWatch reports changes under a set of paths, recursively, new
// directories included, leaving out what its ignorer ignores.
type treeWatch struct {
	fw      *fsnotify.Watcher
	ig      *ignorer
	files   map[string]bool // paths given as files: only they count in their directory
	changes chan string
	done    chan struct{}
}

func newTreeWatch(paths []string, ig *ignorer) (*treeWatch, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &treeWatch{fw: fw, ig: ig, files: map[string]bool{}, changes: make(chan string, 1), done: make(chan struct{})}
	for _, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case fi.IsDir():
			w.addTree(p)
		default:
			// Editors replace a file by renaming another over it: the
			// directory is watched, for this file only.
			w.files[p] = true
			_ = fw.Add(filepath.Dir(p))
		}
	}
	go w.loop()
	return w, nil
}

// addTree watches dir and every directory under it that is not ignored,
// and returns the last file it saw there that is not ignored.
func (w *treeWatch) addTree(dir string) (file string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() {
			if !w.ig.ignored(p) {
				file = p
			}
			return nil
		}
		if p != dir && w.ig.ignored(p) {
			return filepath.SkipDir
		}
		_ = w.fw.Add(p)
		return nil
	})
	return file
}

func (w *treeWatch) loop() {
	defer close(w.changes)
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || w.ig.ignored(ev.Name) {
				continue
			}
			if len(w.files) > 0 && !w.files[ev.Name] && !w.ig.underDir(ev.Name) {
				continue
			}
			name := ev.Name
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					// Files made in it before it was watched count too.
					if f := w.addTree(ev.Name); f != "" {
						name = f
					}
				}
			}
			// The latest change is what counts; a slow reader misses none
			// that matters, only older paths.
			select {
			case w.changes <- name:
			default:
				select {
				case <-w.changes:
				default:
				}
				w.changes <- name
			}
		case _, ok := <-w.fw.Errors:
			if !ok {
				return
			}
		}
	}
}

func (w *treeWatch) close() {
	close(w.done)
	_ = w.fw.Close()
}
