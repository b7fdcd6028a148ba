package core

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fields the fast codec writes and reads, in the order of the
// structs: a field added to Task, Status or Proc without the codec fails
// TestStateCodecKnowsEveryField. (watch is known by leaving it to the
// general path: a watched task's state is encoded and decoded there.)
var codecFields = map[reflect.Type][]string{
	reflect.TypeFor[Task]():   {"pid", "user_id", "command", "cwd", "started_at", "log_file", "argv", "backend", "proc_start", "unit", "fallback", "token", "log_direct", "status", "helper", "name", "restart", "stop_signal", "stop_timeout", "project", "entry", "def", "env_files", "watch", "command_bytes", "cwd_bytes", "argv_bytes"},
	reflect.TypeFor[Status](): {"state", "pid", "code", "signal", "reason", "main_exited", "restarts", "last_exit", "crash_loop", "start_error"},
	reflect.TypeFor[Proc]():   {"pid", "start"},
}

func TestStateCodecKnowsEveryField(t *testing.T) {
	for typ, want := range codecFields {
		var got []string
		for f := range typ.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name != "-" {
				got = append(got, name)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s has JSON fields %q; the fast state codec (statecodec.go) knows %q", typ, got, want)
		}
	}
}

// randomState returns a state with n tasks whose fields are set at random,
// strings with characters JSON escapes, text that is not UTF-8 sometimes.
func randomState(rng *rand.Rand, n int) *State {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	str := func() string {
		return pick("", "plain", "/home/u/a b", "a <b> & 'c'", "\u2028\u2029", "é ü 日本", "\"q\" \\ \t\n", "ctl\x01\x1f", "del\x7f", "bad\xff\xfe") + strconv.Itoa(rng.IntN(3))
	}
	st := &State{Processes: map[string]*Task{}}
	for i := range n {
		h := strconv.FormatUint(rng.Uint64()|1<<63, 16)
		t := &Task{
			Hash: h, PID: rng.IntN(1 << 22), UserID: rng.IntN(70000), Command: str(), Cwd: str(),
			StartedAt: time.Unix(rng.Int64N(1<<33), rng.Int64N(1e9)).UTC(), LogFile: str(),
			Backend: pick("", "fork", "systemd", "launchd"), Unit: pick("", "btl-x.service"), Fallback: pick("", "not launchd: ~/Documents is protected"), Token: pick("", h+"-0011"),
			LogDirect: rng.IntN(2) == 0, Name: pick("", "api", "<n>"), Restart: pick("", "always", "on-failure:3"),
			Project: pick("", "/home/u/app", "/a <b>"), Entry: pick("", "web", "wörker"), Def: pick("", "0123abcd"),
			StopSignal: pick("", "SIGINT"), StopTimeout: pick("", "500ms", "0s"),
		}
		for range rng.IntN(3) {
			t.EnvFiles = append(t.EnvFiles, str())
		}
		if rng.IntN(2) == 0 {
			t.ProcStart = rng.Uint64N(1 << 40)
		}
		for range rng.IntN(4) {
			t.Argv = append(t.Argv, str())
		}
		if rng.IntN(2) == 0 {
			t.Status = &Status{State: RunState(pick("exited", "killed", "running", "starting")), PID: rng.IntN(3) * 7, Code: rng.IntN(3) - 1,
				Signal: rng.IntN(2) * 9, Reason: pick("", "why <not>"), MainExited: rng.IntN(2) == 0, Restarts: rng.IntN(2) * 4,
				LastExit: pick("", "exited 1"), CrashLoop: rng.IntN(2) == 0, StartError: pick("", "fork: <no> \"such\" file")}
		}
		if rng.IntN(2) == 0 {
			t.Helper = &Proc{PID: rng.IntN(1 << 22), Start: rng.Uint64N(1 << 40)}
		}
		if i == 0 {
			t.Argv = []string{} // present and empty: omitted
		}
		st.Processes[h] = t
	}
	return st
}

// generalEncode is encode without the fast path.
func generalEncode(t *testing.T, st *State) []byte {
	t.Helper()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// generalDecode is DecodeState without the fast path.
func generalDecode(b []byte) (*State, error) {
	st := &State{}
	return st, json.Unmarshal(b, st)
}

func TestStateCodecAsGeneralPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	fast, fastEnc := 0, 0
	for i := range 300 {
		st := randomState(rng, rng.IntN(6))
		if i == 0 {
			st.Processes = map[string]*Task{}
		}
		want := generalEncode(t, st)
		if _, ok := st.encodeFast(); ok {
			fastEnc++
		}
		got, err := st.encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encode:\n%s\nwant (json.MarshalIndent):\n%s", got, want)
		}
		wantSt, err := generalDecode(want)
		if err != nil {
			t.Fatal(err)
		}
		// Compact, as a user's tool may write it, and as written.
		var compact bytes.Buffer
		if err := json.Compact(&compact, want); err != nil {
			t.Fatal(err)
		}
		for _, in := range [][]byte{want, compact.Bytes()} {
			gotSt, ok := decodeFaster(in)
			if !ok {
				continue // the general path decodes it
			}
			fast++
			if !reflect.DeepEqual(gotSt.Processes, wantSt.Processes) {
				t.Fatalf("decodeFaster(%s)\n= %#v\nwant %#v", in, gotSt.Processes, wantSt.Processes)
			}
		}
	}
	if fast < 100 || fastEnc < 50 {
		t.Errorf("the fast decoder took only %d of 600 files, the fast encoder %d of 300 states", fast, fastEnc)
	}
}

// TestStateDecodeFasterRefuses: what the fast decoder does not take is left
// to the general path, which decodes it (or calls it corrupt) as before.
func TestStateDecodeFasterRefuses(t *testing.T) {
	for _, in := range []string{
		``, `{`, `[]`, `null`, `{"processes": null}`, `{"processes": {"0123456789abcdef": null}}`,
		`{"processes": {}, "extra": 1}`, `{"processes": {}} {}`, `{"processes": {}, "processes": {}}`,
		`{"processes": {"0123456789abcdef": {"pid": 1, "pid": 2}}}`,
		`{"processes": {"0123456789abcdef": {"PID": 1}}}`,
		`{"processes": {"0123456789abcdef": {"pid": 1.0}}}`,
		`{"processes": {"0123456789abcdef": {"pid": 1e3}}}`,
		`{"processes": {"0123456789abcdef": {"pid": 01}}}`,
		`{"processes": {"0123456789abcdef": {"pid": 99999999999999999999}}}`,
		`{"processes": {"0123456789abcdef": {"proc_start": -1}}}`,
		`{"processes": {"0123456789abcdef": {"command": null}}}`,
		`{"processes": {"0123456789abcdef": {"command": 5}}}`,
		`{"processes": {"0123456789abcdef": {"command": "a` + "\x01" + `"}}}`,
		`{"processes": {"0123456789abcdef": {"command_bytes": "YQ=="}}}`,
		`{"processes": {"0123456789abcdef": {"future": 1}}}`,
		`{"processes": {"0123456789abcdef": {"started_at": "yesterday"}}}`,
		`{"processes": {"0123456789abcdef": {"status": {"state": "exited", "later": 1}}}}`,
		`{"processes": {"0123456789abcdef": {"argv": ["a",]}}}`,
		`{"processes": {"0123456789abcdef": {"log_direct": tru}}}`,
	} {
		if st, ok := decodeFaster([]byte(in)); ok {
			t.Errorf("decodeFaster(%s) = %#v, want it left to the general path", in, st)
		}
	}
}
