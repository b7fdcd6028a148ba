package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"btl/core"
	"btl/internal/logread"
)

// tail is one task's log followed by followMany.
type tail struct {
	hash  string
	label string
	log   *logread.Follower
	part  []byte    // a line read without its end yet, at most maxPartial
	since time.Time // when part began to wait for its end
	out   *prefixer // where read prints, and
	now   time.Time // when it reads
	pid   int       // the instance last seen in the state
	token string    // its instance token
	ended bool      // this instance's end has been printed
	// instance returns the token of the task's recorded instance, "" when
	// it is gone from the state
	instance func() string
}

// followPoll is how often followed logs are read; every endCheck-th
// poll also looks at the state for tasks that joined, ended or left.
const (
	followPoll = 100 * time.Millisecond
	endCheck   = 5
)

// A line without its end yet is printed as it is once it reaches
// maxPartial bytes, or once it has waited partialWait for the rest: a
// task that writes without newlines (a prompt, a progress bar, megabytes
// of one line) shows up, and the follower's memory stays bounded.
const (
	maxPartial  = 64 << 10
	partialWait = time.Second
)

// followMany follows the logs of the tasks named by args (every task,
// including those that start later, when args is empty), each line
// prefixed by the task's name or short hash.
func (e *env) followMany(ctx context.Context, args []string, o logOptions, wait bool) error {
	st, err := e.mgr.Snapshot()
	if err != nil {
		return err
	}
	var fixed []string
	for _, a := range args {
		t, err := core.Find(st, a)
		if err != nil {
			return err
		}
		if !slices.Contains(fixed, t.Hash) {
			fixed = append(fixed, t.Hash)
		}
	}
	lines := 10
	if o.tail {
		lines = o.lines
	}
	p := &prefixer{w: e.stdout, color: colorOK(e.stdout), width: len("12345678")}
	tails := map[string]*tail{}
	join := func(t *core.Task, fromRun bool) *tail {
		tl := newTail(t.Hash, taskLabel(t), t.LogFile, lines, fromRun)
		tl.pid, tl.token = t.PID, t.Token
		tl.instance = func() string { return e.instanceOf(tl.hash) }
		tails[t.Hash] = tl
		return tl
	}
	// The labels' column is as wide as the widest label at the start, and
	// stays so: a longer label of a task that joins later is cut to it.
	for _, t := range st.Sorted() {
		if len(fixed) == 0 || slices.Contains(fixed, t.Hash) {
			p.width = max(p.width, len(join(t, false).label))
		}
	}
	defer func() {
		for _, tl := range tails {
			_ = tl.log.Close()
		}
	}()
	// Ends are judged under the state lock, so that a replace in
	// progress (old instance stopped, new one not yet recorded) is not
	// taken for the end of the task.
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for n := 0; ; n++ {
		for _, h := range sortedKeys(tails) {
			tails[h].read(p, time.Now())
		}
		if n%endCheck == 0 {
			done := false
			_ = e.mgr.Look(func(st *core.State) {
				done = e.checkTails(ctx, st, tails, fixed, join, p, wait)
			})
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// checkTails brings the followed tasks in line with the state: tasks
// that left it are finished and dropped, new ones join (when following
// every task), and an instance that ended gets its end printed. It
// reports whether following is over: named tasks all gone, or all ended
// without wait.
func (e *env) checkTails(ctx context.Context, st *core.State, tails map[string]*tail, fixed []string, join func(*core.Task, bool) *tail, p *prefixer, wait bool) bool {
	for _, h := range sortedKeys(tails) {
		tl := tails[h]
		t := st.Processes[h]
		if t == nil {
			tl.read(p, time.Now())
			tl.flush(p)
			if !tl.ended {
				p.line(tl, "[btl] killed") // and forgotten
			}
			_ = tl.log.Close()
			delete(tails, h)
			continue
		}
		if t.Token != tl.token {
			// Replaced, and its new run's start marker not yet read.
			tl.read(p, time.Now())
			tl.flush(p)
			tl.replaced(p, t.Token)
		}
		if t.PID != tl.pid {
			tl.pid = t.PID
		}
		if tl.ended {
			continue
		}
		s := t.Status
		if s == nil || !s.Ended() {
			st := e.mgr.Check(ctx, t)
			s = &st
		}
		if s.Ended() {
			tl.read(p, time.Now())
			tl.flush(p)
			p.line(tl, "[btl] "+s.String())
			tl.ended = true
		}
	}
	if len(fixed) == 0 {
		for _, t := range st.Sorted() {
			if tails[t.Hash] == nil {
				join(t, true).read(p, time.Now())
			}
		}
		return false
	}
	if len(tails) == 0 {
		return true
	}
	if wait {
		return false
	}
	for _, tl := range tails {
		if !tl.ended {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]*tail) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// newTail returns the tail of the log at path of the task with hash. When
// the file is opened, it starts at its last lines or, for a task that
// joined while following (fromRun), at the start of its current run.
func newTail(hash, label, path string, lines int, fromRun bool) *tail {
	return &tail{hash: hash, label: label, log: logread.Follow(path, func(f *os.File) error {
		if fromRun {
			return logread.SeekLastRun(f)
		}
		return logread.SeekTail(f, lines)
	})}
}

// taskLabel is how followed lines name a task: its name, or its short hash.
func taskLabel(t *core.Task) string {
	if t.Name != "" {
		return t.Name
	}
	return t.Hash[:8]
}

// read prints the lines added to the log since the last read, at now: the
// complete ones, and a line without its end yet once it is maxPartial
// long or has waited partialWait.
func (tl *tail) read(p *prefixer, now time.Time) {
	tl.out, tl.now = p, now
	_ = tl.log.Poll(tl)
	if len(tl.part) > 0 && now.Sub(tl.since) >= partialWait {
		tl.flush(p)
	}
}

// Write prints what the log holds past the last read: each complete
// line, and the start of a line without its end as soon as it is
// maxPartial long (the rest follows on lines of its own).
func (tl *tail) Write(b []byte) (int, error) {
	p, n := tl.out, len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			room := maxPartial - len(tl.part)
			if len(b) < room {
				if len(tl.part) == 0 {
					tl.since = tl.now
				}
				tl.part = append(tl.part, b...)
				break
			}
			tl.part = append(tl.part, b[:room]...)
			tl.flush(p)
			b = b[room:]
			continue
		}
		line := string(b[:i])
		if len(tl.part) > 0 {
			line = string(append(tl.part, b[:i]...))
			tl.part = tl.part[:0]
		}
		if _, ok := core.ParseStartMarker(line); ok && tl.instance != nil {
			// A new instance's run (a replace), or a restart of this one.
			if tok := tl.instance(); tok != "" && tok != tl.token {
				tl.replaced(p, tok)
			}
		}
		p.line(tl, line)
		b = b[i+1:]
	}
	return n, nil
}

// replaced ends the instance followed so far, which another (token)
// replaced: its end line, unless it had ended already.
func (tl *tail) replaced(p *prefixer, token string) {
	if token == tl.token {
		return // said already, on reading the new run's start marker
	}
	if !tl.ended && tl.token != "" {
		p.line(tl, "[btl] replaced")
	}
	tl.token, tl.ended = token, false
}

// instanceOf returns the token of the recorded instance of the task with
// hash, "" when there is none. A replace records its new instance before
// it starts it, so its run's start marker is never read before this.
func (e *env) instanceOf(hash string) string {
	st, err := e.mgr.Snapshot()
	if err != nil || st.Processes[hash] == nil {
		return ""
	}
	return st.Processes[hash].Token
}

// flush prints a line that has no end (yet).
func (tl *tail) flush(p *prefixer) {
	if len(tl.part) > 0 {
		p.line(tl, string(tl.part))
		tl.part = tl.part[:0]
	}
}

// prefixer writes followed lines, each after its task's label, the label
// in a colour of its own on a terminal.
type prefixer struct {
	w     io.Writer
	color bool
	width int
}

// labelColors are the colours labels get, by their task's hash.
var labelColors = []string{"36", "33", "32", "35", "34", "91", "96", "93", "92", "95"}

func (p *prefixer) line(tl *tail, text string) {
	label := tl.label
	if p.width > 0 && len(label) > p.width {
		label = label[:p.width-1] + "~"
	}
	label += strings.Repeat(" ", max(p.width-len(label), 0))
	if p.color {
		h := fnv.New32a()
		h.Write([]byte(tl.hash))
		label = "\x1b[" + labelColors[h.Sum32()%uint32(len(labelColors))] + "m" + label + "\x1b[0m"
	}
	fmt.Fprintf(p.w, "%s | %s\n", label, text)
}
