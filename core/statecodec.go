package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

type plainTask Task

// UnmarshalJSON decodes a task and keeps the fields btl does not know.
func (t *Task) UnmarshalJSON(b []byte) error {
	extra, err := decodeKeeping(b, (*plainTask)(t), reflect.TypeFor[plainTask]())
	t.extra = extra
	t.fromBytes()
	return err
}

// MarshalJSON encodes a task with the unknown fields it was read with.
func (t *Task) MarshalJSON() ([]byte, error) {
	c := *t
	c.toBytes()
	return withExtra((*plainTask)(&c), t.extra)
}

type plainState State

// UnmarshalJSON decodes the state and keeps the fields btl does not know.
func (s *State) UnmarshalJSON(b []byte) error {
	extra, err := decodeKeeping(b, (*plainState)(s), reflect.TypeFor[plainState]())
	if err != nil {
		return err
	}
	s.extra = extra
	for h, t := range s.Processes {
		if t == nil {
			return fmt.Errorf("entry %q is null", h)
		}
		t.Hash = h
	}
	return nil
}

// MarshalJSON encodes the state with the unknown fields it was read with.
func (s *State) MarshalJSON() ([]byte, error) {
	return withExtra((*plainState)(s), s.extra)
}

var knownFields sync.Map // reflect.Type -> map[string]bool

func jsonNames(typ reflect.Type) map[string]bool {
	if v, ok := knownFields.Load(typ); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	knownFields.Store(typ, names)
	return names
}

// decodeKeeping decodes b into v (of type typ) and returns the fields v has
// no place for. It is the general path: a state file with only known
// fields, the usual case, is decoded by decodeFaster without it.
func decodeKeeping(b []byte, v any, typ reflect.Type) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	return unknownFields(b, typ)
}

func unknownFields(b []byte, typ reflect.Type) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	known := jsonNames(typ)
	for k := range all {
		if known[k] {
			delete(all, k)
			continue
		}
		// encoding/json fills a field from a key that differs only in
		// case, so that key is not unknown either.
		for n := range known {
			if strings.EqualFold(n, k) {
				delete(all, k)
				break
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

func withExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, raw := range extra {
		if _, ok := all[k]; !ok {
			all[k] = raw
		}
	}
	return json.Marshal(all)
}

// DecodeState parses the content of a state file and checks every hash.
func DecodeState(b []byte) (*State, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty")
	}
	st, ok := decodeFaster(b)
	if !ok {
		st = &State{}
		if err := json.Unmarshal(b, st); err != nil {
			return nil, err
		}
	}
	if st.Processes == nil {
		st.Processes = map[string]*Task{}
	}
	for h := range st.Processes {
		if !ValidHash(h) {
			return nil, fmt.Errorf("bad hash %q", h)
		}
	}
	return st, nil
}

// encode renders st as the state file holds it: json.MarshalIndent's
// output, without its pass over the whole of MarshalJSON's output to
// compact it again (MarshalJSON returns what json.Marshal wrote).
func (st *State) encode() ([]byte, error) {
	if b, ok := st.encodeFast(); ok {
		return b, nil
	}
	b, err := st.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(b) * 2)
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// The state file's usual content (only fields btl knows, text that is
// UTF-8) is encoded and decoded here without reflection: every command
// reads the whole file and most write it, so their cost grows with every
// task recorded. Anything else takes encoding/json's general path, which
// keeps unknown fields and exact bytes; both give the same result for
// what the fast paths accept (see statecodec_test.go).

// encodeFast renders st exactly as json.MarshalIndent(st, "", "  ")
// followed by a newline would, for a state without unknown fields. ok is
// false when st has some, or bytes that are not UTF-8 (then the general
// path encodes it).
func (st *State) encodeFast() (b []byte, ok bool) {
	if st.extra != nil {
		return nil, false
	}
	hashes := make([]string, 0, len(st.Processes))
	size := 32
	for h, t := range st.Processes {
		// A watched task's record (a nested object with a duration and a
		// time) takes the general path.
		if t == nil || t.extra != nil || !t.isText() || t.Watch != nil {
			return nil, false
		}
		hashes = append(hashes, h)
		size += 512 + len(t.Command)*2 + len(t.Cwd) + len(t.LogFile)
	}
	slices.Sort(hashes)
	b = make([]byte, 0, size)
	b = append(b, "{\n  \"processes\": "...)
	switch {
	case st.Processes == nil:
		b = append(b, "null"...)
	case len(hashes) == 0:
		b = append(b, "{}"...)
	default:
		b = append(b, "{\n"...)
		for i, h := range hashes {
			if i > 0 {
				b = append(b, ",\n"...)
			}
			b = append(b, "    "...)
			b = appendJSONString(b, h)
			b = append(b, ": "...)
			var err error
			if b, err = st.Processes[h].appendJSON(b); err != nil {
				return nil, false
			}
		}
		b = append(b, "\n  }"...)
	}
	return append(b, "\n}\n"...), true
}

// isText reports whether t's command, directory and arguments are UTF-8
// (else they are encoded twice, as text and as bytes: the general path).
func (t *Task) isText() bool {
	return utf8.ValidString(t.Command) && utf8.ValidString(t.Cwd) && !slices.ContainsFunc(t.Argv, func(a string) bool { return !utf8.ValidString(a) })
}

// objectWriter appends the members of one JSON object indented as
// json.MarshalIndent does at the given depth.
type objectWriter struct {
	b      []byte
	indent string
	n      int
}

func (w *objectWriter) key(k string) {
	if w.n == 0 {
		w.b = append(w.b, "{\n"...)
	} else {
		w.b = append(w.b, ",\n"...)
	}
	w.n++
	w.b = append(w.b, w.indent...)
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, "\": "...)
}

func (w *objectWriter) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

func (w *objectWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *objectWriter) end() []byte {
	if w.n == 0 {
		return append(w.b, "{}"...)
	}
	w.b = append(w.b, '\n')
	w.b = append(w.b, w.indent[:len(w.indent)-2]...)
	return append(w.b, '}')
}

// appendJSON appends t as one entry of the processes object (depth 2).
func (t *Task) appendJSON(b []byte) ([]byte, error) {
	const in = "      "
	w := objectWriter{b: b, indent: in}
	w.int("pid", int64(t.PID))
	w.int("user_id", int64(t.UserID))
	w.str("command", t.Command)
	w.str("cwd", t.Cwd)
	w.key("started_at")
	ts, err := t.StartedAt.MarshalJSON()
	if err != nil {
		return nil, err
	}
	w.b = append(w.b, ts...)
	w.str("log_file", t.LogFile)
	w.strs("argv", t.Argv)
	if t.Backend != "" {
		w.str("backend", t.Backend)
	}
	if t.ProcStart != 0 {
		w.key("proc_start")
		w.b = strconv.AppendUint(w.b, t.ProcStart, 10)
	}
	if t.Unit != "" {
		w.str("unit", t.Unit)
	}
	if t.Fallback != "" {
		w.str("fallback", t.Fallback)
	}
	if t.Token != "" {
		w.str("token", t.Token)
	}
	if t.LogDirect {
		w.key("log_direct")
		w.b = append(w.b, "true"...)
	}
	if s := t.Status; s != nil {
		w.key("status")
		sw := objectWriter{b: w.b, indent: in + "  "}
		sw.str("state", string(s.State))
		for _, f := range []struct {
			k string
			v int
		}{{"pid", s.PID}, {"code", s.Code}, {"signal", s.Signal}} {
			if f.v != 0 {
				sw.int(f.k, int64(f.v))
			}
		}
		if s.Reason != "" {
			sw.str("reason", s.Reason)
		}
		if s.MainExited {
			sw.key("main_exited")
			sw.b = append(sw.b, "true"...)
		}
		if s.Restarts != 0 {
			sw.int("restarts", int64(s.Restarts))
		}
		if s.LastExit != "" {
			sw.str("last_exit", s.LastExit)
		}
		if s.CrashLoop {
			sw.key("crash_loop")
			sw.b = append(sw.b, "true"...)
		}
		if s.StartError != "" {
			sw.str("start_error", s.StartError)
		}
		w.b = sw.end()
	}
	if p := t.Helper; p != nil {
		w.key("helper")
		pw := objectWriter{b: w.b, indent: in + "  "}
		pw.int("pid", int64(p.PID))
		pw.key("start")
		pw.b = strconv.AppendUint(pw.b, p.Start, 10)
		w.b = pw.end()
	}
	if t.Name != "" {
		w.str("name", t.Name)
	}
	if t.Restart != "" {
		w.str("restart", t.Restart)
	}
	if t.StopSignal != "" {
		w.str("stop_signal", t.StopSignal)
	}
	if t.StopTimeout != "" {
		w.str("stop_timeout", t.StopTimeout)
	}
	if t.Project != "" {
		w.str("project", t.Project)
	}
	if t.Entry != "" {
		w.str("entry", t.Entry)
	}
	if t.Def != "" {
		w.str("def", t.Def)
	}
	w.strs("env_files", t.EnvFiles)
	return w.end(), nil
}

// strs writes a list of strings (nothing when it is empty, as omitempty).
func (w *objectWriter) strs(k string, list []string) {
	if len(list) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, "[\n"...)
	for i, a := range list {
		if i > 0 {
			w.b = append(w.b, ",\n"...)
		}
		w.b = append(w.b, w.indent+"  "...)
		w.b = appendJSONString(w.b, a)
	}
	w.b = append(w.b, "\n"+w.indent+"]"...)
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII as it is, anything else through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeFaster decodes a state file whose tasks hold only fields btl
// knows, with values of the types btl writes, in one pass and without
// reflection. It reports false for anything else (unknown or repeated
// keys, null, numbers that are not plain integers, the *_bytes fields),
// which the general paths then decode or reject.
func decodeFaster(b []byte) (*State, bool) {
	// One copy of the file as a string: every string decoded is a part of
	// it, without a copy of its own.
	d := &jsonScanner{b: string(b)}
	if !d.objectStart() {
		return nil, false
	}
	st := &State{}
	for first := true; ; first = false {
		key, more, ok := d.member(first)
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
		if key != "processes" || st.Processes != nil {
			return nil, false
		}
		if !d.objectStart() {
			return nil, false
		}
		st.Processes = map[string]*Task{}
		for first := true; ; first = false {
			h, more, ok := d.member(first)
			if !ok {
				return nil, false
			}
			if !more {
				break
			}
			if _, dup := st.Processes[h]; dup {
				return nil, false
			}
			t := &Task{Hash: h}
			if !d.task(t) {
				return nil, false
			}
			st.Processes[h] = t
		}
	}
	d.space()
	if d.i != len(d.b) {
		return nil, false
	}
	return st, true
}

// jsonScanner reads the JSON of a state file, byte by byte.
type jsonScanner struct {
	b string
	i int
}

func (d *jsonScanner) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, reporting whether c was there.
func (d *jsonScanner) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *jsonScanner) objectStart() bool { return d.consume('{') }

// member reads the next key of an object whose '{' was read: more is
// false at its '}'.
func (d *jsonScanner) member(first bool) (key string, more, ok bool) {
	if d.consume('}') {
		return "", false, true
	}
	if !first && !d.consume(',') {
		return "", false, false
	}
	key, ok = d.string()
	if !ok || !d.consume(':') {
		return "", false, false
	}
	return key, true, true
}

// string reads a JSON string: plain ASCII directly, anything with escapes
// or other bytes through encoding/json (which replaces invalid UTF-8).
func (d *jsonScanner) string() (string, bool) {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start := d.i
	plain := true
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			if plain {
				return d.b[start+1 : j], true
			}
			var s string
			if json.Unmarshal([]byte(d.b[start:d.i]), &s) != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			j++ // the escaped byte is not the end
		case c < 0x20:
			return "", false
		case c >= 0x80:
			plain = false
		}
	}
	return "", false
}

// int reads an integer written as JSON writes Go integers.
func (d *jsonScanner) int() (int64, bool) {
	d.space()
	j := d.i
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9' {
		j++
	}
	if j == digits || d.b[digits] == '0' && j > digits+1 {
		return 0, false
	}
	if j < len(d.b) && (d.b[j] == '.' || d.b[j] == 'e' || d.b[j] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(d.b[d.i:j], 10, 64)
	if err != nil {
		return 0, false
	}
	d.i = j
	return v, true
}

func (d *jsonScanner) uint() (uint64, bool) {
	d.space()
	j := d.i
	for j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9' {
		j++
	}
	if j == d.i || d.b[d.i] == '0' && j > d.i+1 {
		return 0, false
	}
	if j < len(d.b) && (d.b[j] == '.' || d.b[j] == 'e' || d.b[j] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseUint(d.b[d.i:j], 10, 64)
	if err != nil {
		return 0, false
	}
	d.i = j
	return v, true
}

// smallInt reads an integer that fits Go's int.
func (d *jsonScanner) smallInt(dst *int) bool {
	v, ok := d.int()
	if !ok || int64(int(v)) != v {
		return false
	}
	*dst = int(v)
	return true
}

func (d *jsonScanner) bool(dst *bool) bool {
	d.space()
	switch {
	case strings.HasPrefix(d.b[d.i:], "true"):
		*dst, d.i = true, d.i+4
	case strings.HasPrefix(d.b[d.i:], "false"):
		*dst, d.i = false, d.i+5
	default:
		return false
	}
	return true
}

func (d *jsonScanner) str(dst *string) bool {
	s, ok := d.string()
	*dst = s
	return ok
}

// object reads an object whose members field reads, each key once.
func (d *jsonScanner) object(field func(key string) bool) bool {
	if !d.objectStart() {
		return false
	}
	var seenArr [24]string
	seen := seenArr[:0]
	for first := true; ; first = false {
		key, more, ok := d.member(first)
		if !ok {
			return false
		}
		if !more {
			return true
		}
		if slices.Contains(seen, key) || !field(key) {
			return false
		}
		seen = append(seen, key)
	}
}

// task reads one entry of the processes object.
func (d *jsonScanner) task(t *Task) bool {
	return d.object(func(key string) bool {
		switch key {
		case "pid":
			return d.smallInt(&t.PID)
		case "user_id":
			return d.smallInt(&t.UserID)
		case "command":
			return d.str(&t.Command)
		case "cwd":
			return d.str(&t.Cwd)
		case "started_at":
			d.space()
			start := d.i
			if _, ok := d.string(); !ok {
				return false
			}
			var ts time.Time
			if ts.UnmarshalText([]byte(d.b[start+1:d.i-1])) != nil {
				return false
			}
			t.StartedAt = ts
			return true
		case "log_file":
			return d.str(&t.LogFile)
		case "argv":
			return d.strs(&t.Argv)
		case "env_files":
			return d.strs(&t.EnvFiles)
		case "backend":
			return d.str(&t.Backend)
		case "proc_start":
			v, ok := d.uint()
			t.ProcStart = v
			return ok
		case "unit":
			return d.str(&t.Unit)
		case "fallback":
			return d.str(&t.Fallback)
		case "token":
			return d.str(&t.Token)
		case "log_direct":
			return d.bool(&t.LogDirect)
		case "status":
			t.Status = &Status{}
			return d.status(t.Status)
		case "helper":
			t.Helper = &Proc{}
			return d.object(func(key string) bool {
				switch key {
				case "pid":
					return d.smallInt(&t.Helper.PID)
				case "start":
					v, ok := d.uint()
					t.Helper.Start = v
					return ok
				}
				return false
			})
		case "name":
			return d.str(&t.Name)
		case "restart":
			return d.str(&t.Restart)
		case "stop_signal":
			return d.str(&t.StopSignal)
		case "stop_timeout":
			return d.str(&t.StopTimeout)
		case "project":
			return d.str(&t.Project)
		case "entry":
			return d.str(&t.Entry)
		case "def":
			return d.str(&t.Def)
		}
		return false
	})
}

// strs reads a list of strings.
func (d *jsonScanner) strs(list *[]string) bool {
	if !d.consume('[') {
		return false
	}
	*list = []string{}
	if d.consume(']') {
		return true
	}
	for {
		s, ok := d.string()
		if !ok {
			return false
		}
		*list = append(*list, s)
		if d.consume(']') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

func (d *jsonScanner) status(s *Status) bool {
	return d.object(func(key string) bool {
		switch key {
		case "state":
			var v string
			ok := d.str(&v)
			s.State = RunState(v)
			return ok
		case "pid":
			return d.smallInt(&s.PID)
		case "code":
			return d.smallInt(&s.Code)
		case "signal":
			return d.smallInt(&s.Signal)
		case "reason":
			return d.str(&s.Reason)
		case "main_exited":
			return d.bool(&s.MainExited)
		case "restarts":
			return d.smallInt(&s.Restarts)
		case "last_exit":
			return d.str(&s.LastExit)
		case "crash_loop":
			return d.bool(&s.CrashLoop)
		case "start_error":
			return d.str(&s.StartError)
		}
		return false
	})
}
