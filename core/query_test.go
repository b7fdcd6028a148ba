package core

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestManagerRestart(t *testing.T) {
	for _, c := range []struct {
		name        string
		startedWith string // backend of the recorded task
		ownBackend  bool
		dropEnv     bool // the recorded environment is gone
		wantBackend string
		wantErr     string
	}{
		{name: "its own backend", startedWith: "b", ownBackend: true, wantBackend: "b"},
		{name: "another backend asked for", startedWith: "b", wantBackend: "a"},
		{name: "same as the default", startedWith: "a", ownBackend: true, wantBackend: "a"},
		{name: "no recorded environment", startedWith: "a", ownBackend: true, dropEnv: true, wantBackend: "a"},
		{name: "its backend unreachable", startedWith: "c", ownBackend: true, wantErr: "was started with c: no user bus (give --backend"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, cb := newMem("a"), newMem("b"), newMem("c")
			m := testManager(t, a, b)
			m.Backend = map[string]*memBackend{"a": a, "b": b, "c": cb}[c.startedWith]
			task, _ := m.mustRun(t, t.TempDir(), "sh", "-c", "x")
			if c.dropEnv {
				if err := os.Remove(m.Dirs.EnvFile(task.Hash)); err != nil {
					t.Fatal(err)
				}
			}
			m.Backend = a
			got, env, recorded, err := m.Restart(task.Hash[:6], c.ownBackend)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Restart = %v, want an error with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash != task.Hash || strings.Join(got.Argv, " ") != "sh -c x" {
				t.Errorf("Restart returned %+v, want the task", got)
			}
			if recorded == c.dropEnv || recorded != (len(env) > 0) {
				t.Errorf("recorded = %v with %d variables, want %v", recorded, len(env), !c.dropEnv)
			}
			if m.Backend != a {
				t.Errorf("Restart changed the Manager's backend to %s", m.Backend.Name())
			}
			// The run names the task's backend when it runs where it ran.
			if !recorded {
				env = os.Environ()
			}
			spec, err := m.Prepare(got.Argv, got.Cwd, env)
			if err != nil {
				t.Fatal(err)
			}
			if c.ownBackend {
				spec.Backend = got.BackendName()
			}
			again, _, err := m.Run(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if again.Backend != c.wantBackend {
				t.Errorf("ran again with %s, want %s", again.Backend, c.wantBackend)
			}
		})
	}
}

// describing is a memBackend that describes its tasks and has a hint.
type describing struct{ *memBackend }

func (d describing) Describe(ctx context.Context, t Task) string { return "look at " + t.Unit }
func (d describing) StartHint(t Task) string                     { return "hint for " + t.Unit }

func TestManagerDescribeAndHint(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		backend  string // of the task: d describes, p does not, x is unreachable
		want     string
		wantHint string
	}{
		{"a backend that describes", "d", "look at d-", "hint for d-"},
		{"a backend that does not", "p", "", ""},
		{"an unreachable backend", "x", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, p := describing{newMem("d")}, newMem("p")
			m := testManager(t, p)
			m.Open = func(name string) (Backend, error) {
				if name == "d" {
					return d, nil
				}
				return nil, os.ErrNotExist
			}
			task := &Task{Hash: "0123456789abcdef", Backend: c.backend, Unit: c.backend + "-", UserID: os.Getuid()}
			if got := m.Describe(ctx, task); got != c.want {
				t.Errorf("Describe = %q, want %q", got, c.want)
			}
			if got := m.StartHint(task); got != c.wantHint {
				t.Errorf("StartHint = %q, want %q", got, c.wantHint)
			}
		})
	}
}

func TestManagerShow(t *testing.T) {
	a := newMem("a")
	m := testManager(t, a)
	task, _ := m.mustRun(t, t.TempDir(), "sh", "-c", "x")
	v, err := m.Show(context.Background(), task.Hash[:5])
	if err != nil || v.Hash != task.Hash || !v.Status.Alive() {
		t.Fatalf("Show = %+v, %v; want the task, running", v, err)
	}
	delete(a.running, task.Token)
	if v, err = m.Show(context.Background(), task.Hash[:5]); err != nil || v.Status.State != Exited {
		t.Errorf("Show of an ended task = %+v, %v; want exited", v.Status, err)
	}
	if _, err := m.Show(context.Background(), "ffff"); err == nil {
		t.Error("Show of no task succeeded")
	}
}

// syncing is a memBackend whose logs need syncing (as systemd's do).
type syncing struct {
	*memBackend
	synced *int
}

func (s syncing) SyncLog(ctx context.Context, t Task) error { *s.synced++; return nil }

func TestManagerCheck(t *testing.T) {
	for _, c := range []struct {
		name       string
		ended      bool
		wantSynced int
	}{
		{"running: the log is not synced", false, 0},
		{"ended: the log is synced", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			b := syncing{newMem("s"), &n}
			m := testManager(t, b.memBackend)
			m.Backend = b
			task, _ := m.mustRun(t, t.TempDir(), "sh", "-c", "x")
			n = 0
			if c.ended {
				delete(b.running, task.Token)
			}
			if st := m.Check(context.Background(), task); st.Ended() != c.ended || n != c.wantSynced {
				t.Errorf("Check = %v with %d syncs; want ended %v, %d syncs", st, n, c.ended, c.wantSynced)
			}
		})
	}
}
