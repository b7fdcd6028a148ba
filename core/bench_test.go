package core

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"btl/internal/proc"
)

func BenchmarkHash(b *testing.B) {
	argv := []string{"npm", "run", "dev", "--", "--port", "3000", "it's quoted"}
	for b.Loop() {
		Hash("/home/u/project", CommandLine(argv))
	}
}

// fill returns a store holding n tasks.
func fill(b *testing.B, n int) *Store {
	s := &Store{Dir: b.TempDir()}
	err := s.Update(func(st *State) error {
		for i := range n {
			h := fmt.Sprintf("%016x", i)
			st.Processes[h] = &Task{
				Hash: h, PID: 100000 + i, UserID: os.Getuid(), Command: "npm run dev --port " + fmt.Sprint(i),
				Cwd: "/home/u/project", StartedAt: time.Now(), LogFile: "/home/u/.local/share/btl/logs/" + h + ".log",
				Argv: []string{"npm", "run", "dev"}, Backend: "fork", ProcStart: 12345, Token: h + "-0011223344556677",
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkStateRead(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := fill(b, n)
			for b.Loop() {
				if _, err := s.Read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStateUpdate is a locked load, change and atomic save (with
// fsync), as every btl command that changes state does.
func BenchmarkStateUpdate(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := fill(b, n)
			for b.Loop() {
				err := s.Update(func(st *State) error {
					st.Processes["0000000000000000"].PID++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nullBackend reports every task gone without asking any system.
type nullBackend struct{}

func (nullBackend) Name() string                                    { return "fork" }
func (nullBackend) Start(context.Context, Spec) (Started, error)    { return Started{}, nil }
func (nullBackend) Stop(context.Context, Task, time.Duration) error { return nil }
func (nullBackend) List(context.Context) ([]Task, error)            { return nil, nil }
func (nullBackend) Inspect(_ context.Context, t Task) (Status, error) {
	if t.Proc().Verify() {
		return Status{State: Running}, nil
	}
	return Status{State: Gone}, nil
}

// BenchmarkReconcile is btl list's work on state: every entry's process
// identity checked against the kernel.
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := fill(b, n)
			m := &Manager{Store: s, Dirs: DirsAt(s.Dir), Backend: nullBackend{}}
			for b.Loop() {
				if _, err := m.List(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUsages is what btl list adds to read what 10 running tasks use:
// one snapshot of the process table, their trees, ports and stats.
func BenchmarkUsages(b *testing.B) {
	var tasks []*Task
	for i := range 10 {
		token := fmt.Sprintf("bench%02d-%d", i, os.Getpid())
		cmd := exec.Command("sleep", "100")
		cmd.Env = append(os.Environ(), EnvInstance+"="+token)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		info, err := proc.LookupProc(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		tasks = append(tasks, &Task{PID: cmd.Process.Pid, ProcStart: info.Start, Token: token})
	}
	for b.Loop() {
		us := Usages(tasks)
		if len(us[0].PIDs) != 1 {
			b.Fatalf("tree of the first task: %v", us[0].PIDs)
		}
	}
}
