package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// TestMain lets the test binary act as a state writer in another process.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BTL_TEST_STATE_WRITER"); dir != "" {
		os.Exit(stateWriter(dir, os.Getenv("BTL_TEST_WRITER_ID")))
	}
	os.Exit(m.Run())
}

// stateWriter adds 50 entries, one Update each.
func stateWriter(dir, id string) int {
	s := &Store{Dir: dir}
	for i := range 50 {
		err := s.Update(func(st *State) error {
			h := fmt.Sprintf("%08s%08x", id, i)
			st.Processes[h] = &Task{PID: i + 2, Command: "writer " + id}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func TestStoreConcurrentGoroutines(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				err := s.Update(func(st *State) error {
					st.Processes[fmt.Sprintf("%08x%08x", g, i)] = &Task{PID: 1000 + i}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Processes) != 8*25 {
		t.Fatalf("%d entries, want %d: updates were lost", len(st.Processes), 8*25)
	}
}

func TestStoreConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for i := range 6 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "BTL_TEST_STATE_WRITER="+dir, "BTL_TEST_WRITER_ID="+strconv.Itoa(i), "GORACE=atexit_sleep_ms=0")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	st, err := (&Store{Dir: dir}).Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Processes) != 6*50 {
		t.Fatalf("%d entries, want %d: updates were lost", len(st.Processes), 6*50)
	}
}

// TestStoreCrashMidWrite kills writers at arbitrary moments; the state must
// always parse, and hold every update that was completed.
func TestStoreCrashMidWrite(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "BTL_TEST_STATE_WRITER="+dir, "BTL_TEST_WRITER_ID="+strconv.Itoa(i), "GORACE=atexit_sleep_ms=0")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := (&Store{Dir: dir}).Read(); err != nil {
			t.Fatalf("after killing writer %d: %v", i, err)
		}
	}
	// Leftover temporary files are not state.
	matches, _ := filepath.Glob(filepath.Join(dir, "state.json*"))
	for _, m := range matches {
		if strings.Contains(m, "corrupt") {
			t.Errorf("state was found corrupt: %s", m)
		}
	}
}

func TestStoreCorruptMovedAside(t *testing.T) {
	for name, write := range map[string]func(p string){
		"garbage": func(p string) { os.WriteFile(p, []byte("{not json"), 0o600) },
		"empty":   func(p string) { os.WriteFile(p, nil, 0o600) },
		"null":    func(p string) { os.WriteFile(p, []byte(`{"processes": {"0123456789abcdef": null}}`), 0o600) },
		"huge": func(p string) {
			b := make([]byte, 4*maxState+10)
			for i := range b {
				b[i] = ' '
			}
			os.WriteFile(p, b, 0o600)
		},
		"symlink": func(p string) {
			target := filepath.Join(filepath.Dir(p), "elsewhere.json")
			os.WriteFile(target, []byte(`{"processes": {}}`), 0o600)
			os.Symlink(target, p)
		},
	} {
		t.Run(name, func(t *testing.T) {
			lowerStateLimit(t)
			dir := t.TempDir()
			var warned []string
			s := &Store{Dir: dir, Warn: func(m string) { warned = append(warned, m) }}
			write(s.Path())
			if _, err := s.Read(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read = %v, want ErrCorrupt", err)
			}
			err := s.Update(func(st *State) error {
				if len(st.Processes) != 0 {
					t.Errorf("corrupt state gave entries")
				}
				st.Processes["0123456789abcdef"] = &Task{PID: 5}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(warned) != 1 || strings.Contains(warned[0], "\n") {
				t.Errorf("warnings: %q", warned)
			}
			aside, _ := filepath.Glob(s.Path() + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("moved aside: %v", aside)
			}
			fi, err := os.Lstat(s.Path())
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("new state.json: %v %v", fi, err)
			}
			if name == "symlink" {
				if b, _ := os.ReadFile(filepath.Join(dir, "elsewhere.json")); string(b) != `{"processes": {}}` {
					t.Errorf("write followed the symlink: %s", b)
				}
			}
		})
	}
}

func TestStateRoundTripKeepsUnknown(t *testing.T) {
	in := `{"extra": {"a": [1, 2]}, "processes": {"0123456789abcdef": {"pid": 5, "user_id": 1000, "command": "c", "cwd": "/", "started_at": "2026-01-02T03:04:05Z", "log_file": "/l", "future": true}}}`
	var st State
	if err := json.Unmarshal([]byte(in), &st); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal([]byte(in), &a)
	json.Unmarshal(out, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("round trip changed the state:\n in: %s\nout: %s", in, out)
	}
	if st.Processes["0123456789abcdef"].Hash != "0123456789abcdef" {
		t.Error("hash not set from the key")
	}
}

func FuzzStateParse(f *testing.F) {
	f.Add([]byte(`{"processes": {"0123456789abcdef": {"pid": 5, "started_at": "2026-01-02T03:04:05Z"}}}`))
	f.Add([]byte(`{"processes": null}`))
	f.Add([]byte(`{"x": [1, {"y": null}], "processes": {"0123456789abcdef": {"pid": 1, "z": "keep"}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"processes": {"0123456789abcdef": {"pid": 5, "name": "api"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeState(b)
		if err != nil {
			return
		}
		// Whatever parses must encode, and parse again to the same
		// encoding: nothing is lost or changed by a save.
		enc, err := st.encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		st2, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		enc2, err := st2.encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
		if len(st2.Processes) != len(st.Processes) {
			t.Fatalf("entries %d -> %d", len(st.Processes), len(st2.Processes))
		}
		// The fast path, where it applies, decodes as the general one.
		if fast, ok := decodeFaster(b); ok {
			general := &State{}
			if err := json.Unmarshal(b, general); err != nil {
				t.Fatalf("fast path took what the general one rejects: %v", err)
			}
			if fast.Processes == nil {
				fast.Processes = map[string]*Task{}
			}
			if general.Processes == nil {
				general.Processes = map[string]*Task{}
			}
			fe, _ := fast.encode()
			ge, _ := general.encode()
			if !bytes.Equal(fe, ge) {
				t.Fatalf("fast and general paths differ:\n%s\n%s", fe, ge)
			}
		}
	})
}

func TestStateKeepsBytes(t *testing.T) {
	for name, task := range map[string]Task{
		"text":     {Command: "sleep 1", Cwd: "/tmp/é", Argv: []string{"sleep", "1"}},
		"argument": {Command: "echo 'a\xffb'", Cwd: "/tmp", Argv: []string{"echo", "a\xffb"}},
		"cwd":      {Command: "true", Cwd: "/tmp/d\xfe", Argv: []string{"true"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := &Store{Dir: t.TempDir()}
			if err := s.Update(func(st *State) error {
				tk := task
				st.Processes["0123456789abcdef"] = &tk
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(s.Path())
			if !utf8.Valid(b) {
				t.Errorf("state.json is not UTF-8:\n%s", b)
			}
			if IsText(task.Cwd, task.Command) && IsText(task.Argv...) && bytes.Contains(b, []byte("_bytes")) {
				t.Errorf("text recorded as bytes too:\n%s", b)
			}
			st, err := s.Read()
			if err != nil {
				t.Fatal(err)
			}
			got := st.Processes["0123456789abcdef"]
			if got.Command != task.Command || got.Cwd != task.Cwd || !slices.Equal(got.Argv, task.Argv) {
				t.Errorf("read back %q %q %q, want %q %q %q", got.Command, got.Cwd, got.Argv, task.Command, task.Cwd, task.Argv)
			}
		})
	}
}

// TestStoreRemovesLeftTemps: the temporary files of writers that died in
// the middle of a save go with the next update.
func TestStoreRemovesLeftTemps(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	// A writer killed after creating its temporary file.
	cmd := exec.Command("sh", "-c", `printf '{"proc' > "$0/.state.json.tmp-123"; kill -9 $$`, s.Dir)
	cmd.Run()
	left, _ := filepath.Glob(filepath.Join(s.Dir, ".state.json.tmp-*"))
	if len(left) != 1 {
		t.Fatalf("set-up: %v", left)
	}
	if err := s.Update(func(st *State) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir, ".state.json.tmp-*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestStateEncodeAsMarshalIndent checks that the state file's bytes are
// json.MarshalIndent's, unknown fields and characters JSON escapes included.
func TestStateEncodeAsMarshalIndent(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", `{"processes": {}}`},
		{"plain", `{"processes": {"0123456789abcdef": {"pid": 5, "user_id": 1000, "command": "c", "cwd": "/", "started_at": "2026-01-02T03:04:05Z", "log_file": "/l"}}}`},
		{"unknown fields", `{"extra": {"a": [1, 2], "s": "<&>"}, "processes": {"0123456789abcdef": {"pid": 5, "command": "c", "future": {"x": "\u2028"}}}}`},
		{"escaped characters", `{"processes": {"0123456789abcdef": {"command": "a <b> & 'c' \u2028 \u2029 \u00e9 \"q\" \\ \t", "argv": ["<", ">", "&"], "name": "n\u0001"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st State
			if err := json.Unmarshal([]byte(tt.in), &st); err != nil {
				t.Fatal(err)
			}
			got, err := st.encode()
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.MarshalIndent(&st, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if !bytes.Equal(got, want) {
				t.Errorf("encode:\n%s\nwant (json.MarshalIndent):\n%s", got, want)
			}
		})
	}
}
