package environ

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// execWait bounds how long read waits for a process in the middle of
// execve to have an environment again.
const execWait = 100 * time.Millisecond

// read returns the environment pid started with, one entry each. A
// process in the middle of execve has none for a moment (its new memory
// has no environment yet): read waits for it, so that a task's process
// caught exec'ing is not taken for a stranger.
func read(pid int) [][]byte {
	path := "/proc/" + strconv.Itoa(pid) + "/environ"
	deadline := time.Now().Add(execWait)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		if len(b) > 0 || !inExec(pid) || time.Now().After(deadline) {
			return bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// inExec reports whether pid is alive with no environment set up in its
// memory (env_end, field 51 of its stat, is 0): in the middle of execve.
// A process started with an empty environment has env_end set all the same.
func inExec(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && statInExec(b)
}

// statInExec is inExec on the content of /proc/<pid>/stat.
func statInExec(b []byte) bool {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); env_end, field 51, is f[48].
	return len(f) > 48 && string(f[0]) != "Z" && string(f[0]) != "X" && string(f[48]) == "0"
}
