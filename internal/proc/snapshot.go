package proc

import (
	"context"
	"sync"
)

// Snapshot is one read of the caller's processes shared by the reads of
// one command that only reports (list): verifying each task, finding the
// tasks the state lost and measuring what each uses then read the process
// table once, and each environment at most once, instead of once each. It
// is read on first use. What signals processes never uses it: it reads
// the kernel again just before it acts.
type Snapshot struct {
	once sync.Once
	pt   *procTable
	mu   sync.Mutex // guards pt's lazily filled maps
}

type snapshotKey struct{}

// WithSnapshot returns ctx carrying a new Snapshot (see SnapshotOf).
func WithSnapshot(ctx context.Context) context.Context {
	return context.WithValue(ctx, snapshotKey{}, &Snapshot{})
}

// SnapshotOf returns the Snapshot ctx carries, or nil.
func SnapshotOf(ctx context.Context) *Snapshot {
	s, _ := ctx.Value(snapshotKey{}).(*Snapshot)
	return s
}

func (s *Snapshot) table() *procTable {
	s.once.Do(func() { s.pt = readProcTable() })
	return s.pt
}

// VerifyTask is Proc.VerifyTask against the snapshot.
func (s *Snapshot) VerifyTask(p Proc, token string) bool {
	pt := s.table()
	s.mu.Lock()
	defer s.mu.Unlock()
	return pt.verifyTask(p, token)
}

// Own lists the caller's live processes in the snapshot, with their UID.
func (s *Snapshot) Own() []ProcInfo {
	pt := s.table()
	out := make([]ProcInfo, 0, len(pt.byPID))
	for _, info := range pt.byPID {
		out = append(out, info)
	}
	return out
}

// Environ is Environ, read once per snapshot.
func (s *Snapshot) Environ(pid int) [][]byte {
	pt := s.table()
	s.mu.Lock()
	defer s.mu.Unlock()
	return pt.env(pid)
}

// Usages is Usages against the snapshot.
func (s *Snapshot) Usages(ts []Tree) []Usage {
	pt := s.table()
	s.mu.Lock()
	defer s.mu.Unlock()
	return usagesIn(pt, ts)
}
