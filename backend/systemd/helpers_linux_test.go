package systemd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"btl/core"
)

func TestEscapeArgsRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, esc string }{
		{"plain", "plain"},
		{"$HOME", "$$HOME"},
		{"${X}", "$${X}"},
		{"echo $$ >> pids", "echo $$$$ >> pids"},
		{"%h", "%h"},
		{"$", "$$"},
	} {
		got := escapeArgs([]string{tc.in})
		if got[0] != tc.esc {
			t.Errorf("escapeArgs(%q) = %q, want %q", tc.in, got[0], tc.esc)
		}
		if back := unescapeArgs(got); back[0] != tc.in {
			t.Errorf("unescapeArgs(%q) = %q, want %q", got[0], back[0], tc.in)
		}
	}
}

func TestValidEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"keeps valid", []string{"A=1", "_b2=x y", "EMPTY="}, []string{"A=1", "_b2=x y", "EMPTY="}},
		{"drops bad names", []string{"BASH_FUNC_f%%=() { :; }", "1A=x", "=x", "NOEQUALS", "OK=1"}, []string{"OK=1"}},
		{"drops bad values", []string{"BIN=\xff\xfe", "OK=tab\tnew\nline"}, []string{"OK=tab\tnew\nline"}},
		{"last of a name wins", []string{"A=1", "B=2", "A=3"}, []string{"B=2", "A=3"}},
	} {
		if got := validEnv(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: validEnv(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestParseExit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want core.Status
		ok   bool
	}{
		{"exited 0\n", core.Status{State: core.Exited, Code: 0}, true},
		{"exited 3\n", core.Status{State: core.Exited, Code: 3}, true},
		{"killed TERM\n", core.Status{State: core.Signaled, Signal: 15}, true},
		{"dumped SEGV\n", core.Status{State: core.Signaled, Signal: 11}, true},
		{"killed 9", core.Status{State: core.Signaled, Signal: 9}, true},
		{" \n", core.Status{}, false},
		{"", core.Status{}, false},
		{"exited x", core.Status{}, false},
	} {
		got, ok := parseExit(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseExit(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDecodeMessage(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"hello"`, "hello", true},
		{`""`, "", true},
		{`[104,105,27,255]`, "hi\x1b\xff", true},
		{`null`, "", false},
		{``, "", false},
	} {
		got, ok := decodeMessage(json.RawMessage(tc.raw))
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("decodeMessage(%s) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHashOfUnit(t *testing.T) {
	for _, tc := range []struct {
		name, hash, key string
		ok              bool
	}{
		{"btl-0123456789abcdef-89abcdef.service", "0123456789abcdef", "89abcdef", true},
		{"btl-0123456789abcdef.service", "0123456789abcdef", "", true},
		{"btl-0123456789ABCDEF.service", "", "", false},
		{"btl-0123456789abcdef-89ABCDEF.service", "", "", false},
		{"btl-0123456789abcdef-89abcde.service", "", "", false},
		{"btl-0123456789abcdef-89abcdef-0.service", "", "", false},
		{"btl-0123.service", "", "", false},
		{"btllog-0123456789abcdef.service", "", "", false},
		{"btl-logs-01234567.service", "", "", false},
		{"btl-0123456789abcdef.scope", "", "", false},
	} {
		h, k, ok := hashOfUnit(tc.name)
		if ok != tc.ok || (ok && (h != tc.hash || k != tc.key)) {
			t.Errorf("hashOfUnit(%q) = %q, %q, %v; want %q, %q, %v", tc.name, h, k, ok, tc.hash, tc.key, tc.ok)
		}
	}
	run := "/home/u/.local/share/btl/run"
	if h, k, ok := hashOfUnit(UnitName(run, "0123456789abcdef")); !ok || h != "0123456789abcdef" || k != dirKey(run) {
		t.Errorf("hashOfUnit(UnitName(run, h)) = %q, %q, %v", h, k, ok)
	}
	if UnitName(run, "0123456789abcdef") == UnitName("/home/u/other/btl/run", "0123456789abcdef") {
		t.Error("two data directories give a task the same unit name")
	}
}

func TestCopyResumesInterruptedCopy(t *testing.T) {
	dir := t.TempDir()
	j := &journal{LogFile: filepath.Join(dir, "x.log"), Cursor: filepath.Join(dir, "x.cursor"), Lock: filepath.Join(dir, "x.lock")}
	out := `{"__CURSOR":"c1","MESSAGE":"one"}
{"__CURSOR":"c2","MESSAGE":null}
{"__CURSOR":"c3","MESSAGE":[116,119,111]}
{"__CURSOR":"c4","MESSAGE":"three"}
`
	for _, tc := range []struct {
		name    string
		before  string // log content before the copy
		busyAt  int    // size noted by an interrupted copy, or -1
		want    string
		wantCur string
	}{
		{"fresh", "", -1, "one\ntwo\nthree\n", "c4"},
		{"after other output", "old\n", -1, "old\none\ntwo\nthree\n", "c4"},
		{"interrupted after two lines", "old\none\ntwo\n", 4, "old\none\ntwo\nthree\n", "c4"},
		{"interrupted mid-line", "old\none\ntw", 4, "old\none\ntwo\nthree\n", "c4"},
		{"interrupted before writing", "old\n", 4, "old\none\ntwo\nthree\n", "c4"},
		{"foreign bytes after the mark", "old\nzzz\n", 4, "old\nzzz\none\ntwo\nthree\n", "c4"},
	} {
		os.WriteFile(j.LogFile, []byte(tc.before), 0o600)
		p := progress{Cursor: "c0"}
		if tc.busyAt >= 0 {
			fi, _ := os.Stat(j.LogFile)
			st := fi.Sys().(*syscall.Stat_t)
			p = progress{Cursor: "c0", Busy: true, Dev: uint64(st.Dev), Ino: st.Ino, Size: int64(tc.busyAt)}
		}
		c := &copier{j: j, prev: p, skip: j.interrupted(p)}
		c.resume = c.skip != nil
		if err := c.copy(strings.NewReader(out)); err != nil {
			t.Fatalf("%s: copy: %v", tc.name, err)
		}
		if err := c.close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(j.LogFile); string(got) != tc.want || c.last != tc.wantCur {
			t.Errorf("%s: log %q, cursor %q; want %q, %q", tc.name, got, c.last, tc.want, tc.wantCur)
		}
	}
}

func TestCopyFromSinceSkipsEarlierEntries(t *testing.T) {
	dir := t.TempDir()
	j := &journal{LogFile: filepath.Join(dir, "x.log"), Cursor: filepath.Join(dir, "x.cursor"), Lock: filepath.Join(dir, "x.lock")}
	out := `{"__CURSOR":"c1","__REALTIME_TIMESTAMP":"1000000999999","MESSAGE":"earlier data directory"}
{"__CURSOR":"c2","__REALTIME_TIMESTAMP":"1000001000000","MESSAGE":"first"}
{"__CURSOR":"c3","__REALTIME_TIMESTAMP":"1000001000001","MESSAGE":"second"}
`
	p := progress{Since: 1000001000000}
	if got, want := strings.Join(p.from(), " "), "--since=@1000001.000000"; got != want {
		t.Errorf("from() = %q, want %q", got, want)
	}
	c := &copier{j: j, prev: p}
	if err := c.copy(strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(j.LogFile); string(got) != "first\nsecond\n" || c.last != "c3" {
		t.Errorf("log %q, cursor %q; want %q, %q", got, c.last, "first\nsecond\n", "c3")
	}
	// Once a cursor exists, it alone says where the next copy starts.
	for _, tc := range []struct {
		p    progress
		last string
		want progress
	}{
		{progress{Since: 5}, "", progress{Since: 5}},
		{progress{Since: 5}, "c9", progress{Cursor: "c9"}},
		{progress{Cursor: "c1", Busy: true, Size: 3}, "", progress{Cursor: "c1"}},
		{progress{Cursor: "c1"}, "c2", progress{Cursor: "c2"}},
	} {
		if got := tc.p.next(tc.last); got != tc.want {
			t.Errorf("%+v.next(%q) = %+v, want %+v", tc.p, tc.last, got, tc.want)
		}
	}
	if got := (progress{Cursor: "c1", Since: 5}).from(); len(got) != 1 || got[0] != "--after-cursor=c1" {
		t.Errorf("from() with a cursor = %q", got)
	}
}

func TestInOtherTaskUnit(t *testing.T) {
	own := UnitName("/home/u/.local/share/btl/run", "fa3e2ad0ad6d3fc2")
	base := "/user.slice/user-1001.slice/user@1001.service/app.slice/"
	for _, tc := range []struct {
		name, cgroup string
		want         bool
	}{
		{"v2, another task", "0::" + base + "btl-0123456789abcdef.service\n", true},
		{"v2, own task", "0::" + base + own + "\n", false},
		{"v2, a scope", "0::" + base + "run-r1234.scope\n", false},
		{"v2, the log agent", "0::" + base + "btl-logs-01234567.service\n", false},
		{"v1, another task", "4:memory:/x\n1:name=systemd:" + base + "btl-0123456789abcdef.service\n0::/\n", true},
		{"v1, another task in another controller only", "4:memory:" + base + "btl-0123456789abcdef.service\n1:name=systemd:" + base + "run-r1.scope\n0::/\n", false},
		{"empty", "", false},
	} {
		if got := inOtherTaskUnit(tc.cgroup, own); got != tc.want {
			t.Errorf("%s: inOtherTaskUnit = %v, want %v", tc.name, got, tc.want)
		}
	}
}
