package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
)

// A start interrupted at any point, by SIGINT, SIGTERM or SIGKILL of btl,
// leaves either nothing running or a task that state.json tracks and whose
// output reaches its log with no further btl command. Half the starts are
// interrupted at a random moment, half the moment the task's process
// appears (btl has not finished the start then).
func TestInterruptedStart(t *testing.T) {
	shared := newUser(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	sigs := []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL}
	users := []*user{shared}
	left := 0
	for i := range 24 {
		u := shared
		cmd := exec.Command(os.Args[0], "sh", "-c", "echo out-"+strconv.Itoa(i)+"; exec sleep 300")
		cmd.Dir = t.TempDir()
		cmd.Env = u.env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			time.Sleep(time.Duration(rng.IntN(60000)) * time.Microsecond)
		} else {
			before := len(tokenProcs(t, u.home))
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(tokenProcs(t, u.home)) == before; {
				time.Sleep(time.Millisecond)
			}
		}
		cmd.Process.Signal(sigs[(i/2)%len(sigs)])
		cmd.Wait()
	}
	// No btl command from here on, until every running task's output is
	// in its log.
	for _, u := range users {
		tokens := map[string]*core.Task{}
		for _, e := range u.state().Processes {
			tokens[e.Token] = e
		}
		running := tokenProcs(t, u.home)
		left += len(running)
		for tok, ps := range running {
			e, ok := tokens[tok]
			if !ok {
				t.Errorf("processes %v of instance %s run, but state.json does not track them", ps, tok)
				continue
			}
			_, rest, _ := strings.Cut(e.Command, "echo ")
			want, _, _ := strings.Cut(rest, ";")
			coretest.Eventually(t, 10*time.Second, want+" in "+e.LogFile, func() bool {
				b, _ := os.ReadFile(e.LogFile)
				return strings.Contains(string(b), want+"\n")
			})
		}
	}
	t.Logf("%d of 24 interrupted starts left a running task", left)
	for _, u := range users {
		checkAllVisible(t, u)
	}
}
