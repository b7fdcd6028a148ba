package proc

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"btl/internal/proc/internal/environ"
)

// Proc identifies one process across time: its PID and its start time
// (clock ticks since boot on Linux, microseconds since the epoch on macOS).
// A PID alone can be reused; a PID with its start time cannot.
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// ProcInfo is what the kernel says of a live process.
type ProcInfo struct {
	PID    int
	PPID   int
	PGID   int
	UID    int // real user ID
	Start  uint64
	Zombie bool
	// Stopped: the process is stopped (SIGSTOP, SIGTSTP, a tracer) and
	// does nothing until it is continued.
	Stopped bool
	// Linux only (zero elsewhere): CPU time used, user and system, by the
	// process and the children it waited for; resident memory in bytes.
	CPU time.Duration
	RSS uint64
}

// ErrNoProcess means the process does not exist (or is a zombie).
var ErrNoProcess = errors.New("no such process")

// Verify reports whether p is still the same live process and belongs to
// the calling user. Only a verified process may be signalled.
func (p Proc) Verify() bool {
	if p.PID <= 1 || p.Start == 0 {
		return false
	}
	info, err := LookupProc(p.PID)
	return err == nil && !info.Zombie && info.Start == p.Start && info.UID == os.Getuid()
}

// signal sends sig to p after verifying it.
func (p Proc) signal(sig syscall.Signal) bool {
	return p.Verify() && unix.Kill(p.PID, sig) == nil
}

// StopTree ends the process tree of one task: the process group led by
// leader (only when leader is verified as the caller's own process with the
// recorded start time), every process of the caller whose environment
// carries EnvInstance=token, which finds descendants that left the group,
// and every descendant, by parent PID, of those and of roots. A root is a
// per-task helper (the fork supervisor, a child subreaper) whose
// environment carries EnvHelper=token; its descendants are the task's even
// when their environments cannot be read or were dropped, and it is never
// signalled itself.
// It sends sig (the task's stop signal, SIGTERM unless the task says
// otherwise), waits up to grace for all of them to exit, sends SIGKILL to
// what is left, and returns a *SurvivorsError if anything outlives that.
// killed reports whether it sent SIGKILL. The whole tree is found before
// anything is signalled.
func StopTree(leader Proc, token string, sig unix.Signal, grace time.Duration, roots ...Proc) (killed bool, err error) {
	tree := &treeFinder{leader: leader, token: token, roots: roots}
	targets := tree.members()
	if len(targets) == 0 {
		return false, nil
	}
	signalTree(leader, targets, sig)
	if waitGone(targets, grace) {
		// Children forked while the tree was going down.
		if targets = tree.members(); len(targets) == 0 {
			return false, nil
		}
	}
	for range 3 {
		targets = mergeProcs(targets, tree.members())
		signalTree(leader, targets, unix.SIGKILL)
		if waitGone(targets, time.Second) {
			if targets = tree.members(); len(targets) == 0 {
				return true, nil
			}
		}
	}
	var pids []int
	for _, p := range targets {
		if p.Verify() {
			pids = append(pids, p.PID)
		}
	}
	if len(pids) == 0 {
		return true, nil
	}
	return true, &SurvivorsError{PIDs: pids}
}

// TreeAlive reports whether any process of the task's tree is alive (see
// StopTree for what belongs to it).
func TreeAlive(leader Proc, token string, roots ...Proc) bool {
	return len(treeMembers(leader, token, roots)) > 0
}

// treeFinder finds one task's tree again and again while it is stopped.
type treeFinder struct {
	leader Proc
	token  string
	roots  []Proc
	below  bool // a helper of the task lived at an earlier look
}

// members is treeMembers, except that once a helper of the task was seen
// alive, its end means the end of the tree: a helper exits only once no
// process of the task's tree is left (it is their subreaper), so the
// whole process table need not be read to make sure.
func (f *treeFinder) members() []Proc {
	if out, ok := subtree(f.leader, f.token, f.roots); ok {
		f.below = true
		return out
	}
	if f.below {
		return nil
	}
	return treeMembers(f.leader, f.token, f.roots)
}

func signalTree(leader Proc, targets []Proc, sig syscall.Signal) {
	if slices.Contains(targets, leader) && leader.Verify() {
		_ = unix.Kill(-leader.PID, sig)
	}
	for _, p := range targets {
		p.signal(sig)
	}
}

// waitGone polls until none of procs is alive, or until d has passed. It
// starts polling fast so that a task that exits promptly costs little.
func waitGone(procs []Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	pause := 500 * time.Microsecond
	for {
		alive := slices.ContainsFunc(procs, Proc.Verify)
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(pause*2, 20*time.Millisecond)
	}
}

func mergeProcs(a, b []Proc) []Proc {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	return a
}

// EnvHelper, in the environment of a per-task helper process of btl (the
// fork supervisor), names the instance token of the task it serves. A tree
// walk takes such a process as a root only for that task, and never enters
// the helper of another task (a btl started inside a task).
const EnvHelper = "_BTL_HELPER_OF"

// treeMembers lists the live processes of the caller that belong to the
// task (see StopTree): below its live helper where there is one (see
// subtree), else from one snapshot of the whole process table.
func treeMembers(leader Proc, token string, roots []Proc) []Proc {
	if out, ok := subtree(leader, token, roots); ok {
		return out
	}
	members := readProcTable().members(leader, token, roots)
	out := make([]Proc, 0, len(members))
	for _, info := range members {
		out = append(out, Proc{PID: info.PID, Start: info.Start})
	}
	return out
}

// subtree lists the task's processes from its helpers down, without
// reading the rest of the process table: a live helper of the task (its
// environment carries EnvHelper=token) is a child subreaper that outlives
// every process of the task, so every process the task started, even one
// that left its session and was orphaned, is among the helper's
// descendants; a process carrying another task's token, or another task's
// helper, starts a tree that is not this task's. Its cost depends on the
// task's tree alone, not on the number of other processes. ok is false
// when no helper of the task lives or the system cannot list a process's
// children (then the whole table is read, as without helpers).
func subtree(leader Proc, token string, roots []Proc) (out []Proc, ok bool) {
	infos, ok := subtreeInfos(leader, token, roots)
	for _, info := range infos {
		out = append(out, Proc{PID: info.PID, Start: info.Start})
	}
	return out, ok
}

// subtreeInfos is subtree, with what the kernel says of each process.
func subtreeInfos(leader Proc, token string, roots []Proc) (out []ProcInfo, ok bool) {
	if token == "" {
		return nil, false
	}
	uid := os.Getuid()
	var queue []ProcInfo
	member := map[int]bool{}
	for _, r := range roots {
		info, err := LookupProc(r.PID)
		if err != nil || info.Zombie || info.UID != uid || info.Start != r.Start || !hasEnv(r.PID, EnvHelper+"="+token) {
			continue
		}
		queue = append(queue, info)
	}
	helpers := len(queue)
	if helpers == 0 {
		return nil, false
	}
	for i := 0; i < len(queue); i++ {
		parent := queue[i]
		kids, ok := childrenOf(parent.PID)
		if !ok && i < helpers {
			return nil, false
		}
		for _, pid := range kids {
			if member[pid] {
				continue
			}
			// A child must have started no earlier than its parent
			// (guarding against a PID reused since the list was read).
			c, err := LookupProc(pid)
			if err != nil || c.Zombie || c.UID != uid || c.Start < parent.Start || foreignEnv(procEnv(pid), token) {
				continue
			}
			member[pid] = true
			queue = append(queue, c)
			out = append(out, c)
		}
	}
	if !member[leader.PID] && leader.VerifyTask(token) {
		if info, err := LookupProc(leader.PID); err == nil && info.Start == leader.Start {
			out = append(out, info)
		}
	}
	return out, true
}

// procTable is one snapshot of the caller's live processes, from which
// the trees of any number of tasks are found; each process's environment
// is read at most once.
type procTable struct {
	byPID    map[int]ProcInfo
	children map[int][]ProcInfo
	byPGID   map[int][]ProcInfo
	envs     map[int][][]byte
	// byToken lists the processes carrying each EnvInstance token, built
	// on first use from every process's environment (see tokens).
	byToken map[string][]ProcInfo
}

func readProcTable() *procTable {
	uid := os.Getuid()
	procs := userProcs(uid)
	pt := &procTable{byPID: make(map[int]ProcInfo, len(procs)), children: map[int][]ProcInfo{}, byPGID: map[int][]ProcInfo{}, envs: map[int][][]byte{}}
	for _, info := range procs {
		if info.Zombie || info.UID != uid {
			continue
		}
		pt.byPID[info.PID] = info
		pt.children[info.PPID] = append(pt.children[info.PPID], info)
		pt.byPGID[info.PGID] = append(pt.byPGID[info.PGID], info)
	}
	return pt
}

// tokens returns the processes of the snapshot by the EnvInstance token
// their environment carries, reading each environment once per snapshot.
func (pt *procTable) tokens() map[string][]ProcInfo {
	if pt.byToken != nil {
		return pt.byToken
	}
	pt.byToken = map[string][]ProcInfo{}
	prefix := []byte(EnvInstance + "=")
	for _, info := range pt.byPID {
		for _, e := range pt.env(info.PID) {
			if v, ok := bytes.CutPrefix(e, prefix); ok {
				pt.byToken[string(v)] = append(pt.byToken[string(v)], info)
			}
		}
	}
	return pt.byToken
}

// verifyTask is Proc.VerifyTask against the snapshot: p is a live process
// of the caller in it, with the recorded start time, and carries the
// task's token wherever its environment is readable.
func (pt *procTable) verifyTask(p Proc, token string) bool {
	info, ok := pt.byPID[p.PID]
	if p.PID <= 1 || p.Start == 0 || !ok || info.Start != p.Start {
		return false
	}
	return envCarries(pt.env(p.PID), token)
}

// env is procEnv, read once per snapshot.
func (pt *procTable) env(pid int) [][]byte {
	env, ok := pt.envs[pid]
	if !ok {
		env = procEnv(pid)
		pt.envs[pid] = env
	}
	return env
}

func (pt *procTable) hasEnv(pid int, kv string) bool {
	return slices.ContainsFunc(pt.env(pid), func(e []byte) bool { return string(e) == kv })
}

// members lists the processes of the snapshot that belong to the task
// (see StopTree).
func (pt *procTable) members(leader Proc, token string, roots []Proc) []ProcInfo {
	byPID, children := pt.byPID, pt.children
	member := map[int]bool{}
	var queue []ProcInfo
	add := func(info ProcInfo) {
		if !member[info.PID] {
			member[info.PID] = true
			queue = append(queue, info)
		}
	}
	leaderOK := pt.verifyTask(leader, token)
	if leaderOK {
		add(byPID[leader.PID])
		for _, info := range pt.byPGID[leader.PID] {
			add(info)
		}
	}
	var rootInfos []ProcInfo
	for _, r := range roots {
		info, ok := byPID[r.PID]
		if ok && info.Start == r.Start && token != "" && pt.hasEnv(r.PID, EnvHelper+"="+token) {
			rootInfos = append(rootInfos, info)
		}
	}
	// The processes carrying the token, which finds those that left the
	// tree; where a live helper is a subreaper, none can (see subtree), and
	// the environments of the user's other processes are not read.
	if token != "" && (!helpersReap || len(rootInfos) == 0) {
		for _, info := range pt.tokens()[token] {
			add(info)
		}
	}
	// Descendants by parent PID: of the members so far, and of the roots.
	// A child must have started no earlier than its parent (guarding
	// against a PID reused between two reads of the process table), and a
	// process carrying another task's token, or another task's helper,
	// starts a tree that is not this task's.
	descend := func(parent ProcInfo) {
		for _, c := range children[parent.PID] {
			if member[c.PID] || c.Start < parent.Start || pt.foreignTask(c.PID, token) {
				continue
			}
			add(c)
		}
	}
	for _, r := range rootInfos {
		descend(r)
	}
	for i := 0; i < len(queue); i++ {
		descend(queue[i])
	}
	return queue
}

// foreignTask reports whether pid belongs to another btl task than the one
// with the given token: its environment carries another instance token, or
// it is another task's helper.
func (pt *procTable) foreignTask(pid int, token string) bool {
	return foreignEnv(pt.env(pid), token)
}

// foreignEnv reports whether env is that of a process of another btl task
// than the one with the given token (see foreignTask).
func foreignEnv(env [][]byte, token string) bool {
	for _, e := range env {
		if v, ok := bytes.CutPrefix(e, []byte(EnvInstance+"=")); ok && string(v) != token {
			return true
		}
		if v, ok := bytes.CutPrefix(e, []byte(EnvHelper+"=")); ok && string(v) != token {
			return true
		}
	}
	return false
}

// VerifyTask is Verify, and also checks that p carries the task's token
// in its environment wherever the system shows that environment: a PID and
// start time edited into state.json that name another process of the same
// user do not verify, and without a token nothing does. A process whose
// environment cannot be read or is empty (it replaced it, as env -i does)
// is judged by Verify alone.
func (p Proc) VerifyTask(token string) bool {
	return p.Verify() && envCarries(procEnv(p.PID), token)
}

// envCarries reports whether env, a process's environment, is that of the
// task with the given token (see VerifyTask).
func envCarries(env [][]byte, token string) bool {
	if token == "" {
		// An entry without a token (hand-edited, or written by a btl
		// that had none) proves nothing: any process of any btl task
		// carries a BTL_HASH, so none is taken for it.
		return false
	}
	if len(env) == 0 || len(env) == 1 && len(env[0]) == 0 {
		return true
	}
	return slices.ContainsFunc(env, func(e []byte) bool { return string(e) == EnvInstance+"="+token })
}

// FindByToken returns the main process of the task whose instance token is
// token: among the caller's live processes carrying it, the one that leads
// its own process group, else the oldest.
func FindByToken(token string) (Proc, bool) {
	var best *ProcInfo
	uid := os.Getuid()
	for _, info := range userProcs(uid) {
		if info.Zombie || info.UID != uid || !hasEnv(info.PID, EnvInstance+"="+token) {
			continue
		}
		leads := info.PGID == info.PID
		if best == nil || leads && best.PGID != best.PID || leads == (best.PGID == best.PID) && info.Start < best.Start {
			best = &info
		}
	}
	if best == nil {
		return Proc{}, false
	}
	return Proc{PID: best.PID, Start: best.Start}, true
}

// procEnv returns the environment pid started with, one entry each, or
// nil when it cannot be read (or a test hides it: see environ.HideWhere).
func procEnv(pid int) [][]byte { return environ.Visible(pid) }

// ProcHasEnv reports whether the environment pid started with contains the
// entry kv ("NAME=value").
func ProcHasEnv(pid int, kv string) bool { return hasEnv(pid, kv) }

// hasEnv reports whether the environment pid started with contains the
// entry kv.
func hasEnv(pid int, kv string) bool {
	return slices.ContainsFunc(procEnv(pid), func(e []byte) bool { return string(e) == kv })
}
