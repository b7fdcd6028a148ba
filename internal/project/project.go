// Package project reads the files that describe a project's processes: a
// Procfile (foreman's format) or a process-compose file (a subset), and a
// .env file. It is pure: it parses bytes and orders entries, and neither
// runs nor starts anything.
package project

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Names are the files Find looks for, in order: the first one present in
// a directory is the project's file.
var Names = []string{"Procfile.dev", "Procfile", "process-compose.yaml", "process-compose.yml"}

// The kinds of project file.
const (
	KindProcfile = "Procfile"
	KindCompose  = "process-compose"
)

// Condition is what a dependent waits for of the entry it depends on.
type Condition string

// The conditions of depends_on.
const (
	Started   Condition = "process_started"
	Healthy   Condition = "process_healthy"
	Completed Condition = "process_completed_successfully"
)

// Dep is one entry of depends_on.
type Dep struct {
	Name      string
	Condition Condition
	Line      int
}

// HTTPGet is an http_get readiness probe: ready on a response below 400.
type HTTPGet struct {
	Scheme, Host, Path string
	Port               int
}

// URL is the address the probe asks.
func (h HTTPGet) URL() string {
	p := h.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return fmt.Sprintf("%s://%s%s", h.Scheme, joinHostPort(h.Host, h.Port), p)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// Probe says when an entry is ready (healthy): every condition set holds.
type Probe struct {
	HTTP    *HTTPGet // readiness_probe.http_get
	Exec    string   // readiness_probe.exec.command, a shell line; exit 0 is ready
	ExecDir string   // readiness_probe.exec.working_dir, as written
	Port    int      // readiness_probe.tcp_socket.port: the entry's own processes listen on it
	LogLine string   // ready_log_line: a line of this run's log contains it

	InitialDelay float64 // seconds before the first look
	Period       float64 // seconds between two exec or http looks (0: the default)
	Timeout      float64 // seconds one exec or http look may take (0: the default)
}

// Entry is one process of the project.
type Entry struct {
	Name    string
	Line    int      // where the file defines it
	Command string   // the command line as written
	Argv    []string // the command as btl runs it, see Argv
	Dir     string   // working directory as written, "" for the file's directory
	Env     []string // NAME=value the file gives the entry, global ones first; later ones win
	Deps    []Dep
	Ready   *Probe
	// Restart is the availability policy in btl's words: "no",
	// "on-failure" or "always", with ":N" when max_restarts says.
	Restart  string
	Disabled bool
}

// File is a parsed project file.
type File struct {
	Path    string
	Kind    string
	Entries []Entry // in the file's order
	// Ignored lists the keys the file uses that btl does not support,
	// each once, with its line: "processes.web.shutdown (line 12)".
	Ignored []string
}

// Error is a bad project file: where, which key, what is wrong. It reads
// as one line: "path:line: key: message".
type Error struct {
	Path string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return oneLine(b.String())
}

// ErrNoFile is returned by Find when a directory has no project file.
var ErrNoFile = errors.New("no project file")

// Find returns the path of dir's project file: the first of Names there.
func Find(dir string) (string, error) {
	for _, n := range Names {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w in %s (looked for %s)", ErrNoFile, dir, strings.Join(Names, ", "))
}

// MaxFileSize bounds what Load reads.
const MaxFileSize = 1 << 20

// Load reads and parses the project file at path (see Parse); its
// errors, and the File, call it name.
func Load(path, name string, portBase int) (*File, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return Parse(name, b, portBase)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// Parse parses a project file's bytes. The kind comes from the file's
// name: a name starting with "Procfile" is a Procfile, anything else a
// process-compose file. In a Procfile, each entry gets PORT = portBase +
// 100 × its index, as foreman and overmind give it.
func Parse(path string, data []byte, portBase int) (*File, error) {
	var f *File
	var err error
	if strings.HasPrefix(filepath.Base(path), "Procfile") {
		f, err = parseProcfile(path, data, portBase)
	} else {
		f, err = parseCompose(path, data)
	}
	if err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseProcfile reads "name: command" lines; blank lines and lines
// starting with # are skipped.
func parseProcfile(path string, data []byte, portBase int) (*File, error) {
	f := &File{Path: path, Kind: KindProcfile}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(t, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		if !ok {
			return nil, &Error{Path: path, Line: n, Msg: fmt.Sprintf("%q is not a \"name: command\" line", t)}
		}
		if err := checkEntryName(name); err != nil {
			return nil, &Error{Path: path, Line: n, Key: name, Msg: err.Error()}
		}
		if cmd == "" {
			return nil, &Error{Path: path, Line: n, Key: name, Msg: "no command"}
		}
		port := portBase + 100*len(f.Entries)
		f.Entries = append(f.Entries, Entry{
			Name: name, Line: n, Command: cmd, Argv: Argv(cmd),
			Env: []string{"PORT=" + strconv.Itoa(port)},
		})
	}
	if len(f.Entries) == 0 {
		return nil, &Error{Path: path, Msg: "no entries (lines of \"name: command\")"}
	}
	return f, nil
}

// checkEntryName reports whether name can name an entry: what btl accepts
// as a task name, up to 48 characters (room for the project's name).
func checkEntryName(name string) error {
	if name == "" {
		return errors.New("an entry needs a name")
	}
	if len(name) > 48 {
		return errors.New("entry names are at most 48 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return errors.New("entry names use letters, digits, '.', '_' and '-', and start with a letter or digit")
		}
	}
	return nil
}

// check validates what both kinds share: unique names, dependencies on
// entries that exist, no cycle.
func (f *File) check() error {
	byName := map[string]*Entry{}
	for i := range f.Entries {
		e := &f.Entries[i]
		if prev, ok := byName[e.Name]; ok {
			return &Error{Path: f.Path, Line: e.Line, Key: e.Name, Msg: fmt.Sprintf("defined twice (first at line %d)", prev.Line)}
		}
		byName[e.Name] = e
	}
	for _, e := range f.Entries {
		for _, d := range e.Deps {
			dep, ok := byName[d.Name]
			if !ok {
				return &Error{Path: f.Path, Line: d.Line, Key: "processes." + e.Name + ".depends_on." + d.Name, Msg: "no such process"}
			}
			if d.Condition == Healthy && dep.Ready == nil {
				return &Error{Path: f.Path, Line: d.Line, Key: "processes." + e.Name + ".depends_on." + d.Name,
					Msg: fmt.Sprintf("process_healthy needs a readiness_probe or ready_log_line on %s", d.Name)}
			}
		}
	}
	if cyc := f.cycle(); cyc != nil {
		first := byName[cyc[0]]
		line := first.Line
		for _, d := range first.Deps {
			if d.Name == cyc[1] {
				line = d.Line
			}
		}
		return &Error{Path: f.Path, Line: line, Key: "processes." + cyc[0] + ".depends_on", Msg: "cycle: " + strings.Join(cyc, " → ")}
	}
	return nil
}

// cycle returns a dependency cycle (its first name repeated at the end),
// nil when there is none.
func (f *File) cycle() []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var stack []string
	var found []string
	var visit func(name string) bool
	visit = func(name string) bool {
		switch state[name] {
		case open:
			i := slices.Index(stack, name)
			found = append(slices.Clone(stack[i:]), name)
			return true
		case done:
			return false
		}
		state[name] = open
		stack = append(stack, name)
		if e := f.Entry(name); e != nil {
			for _, d := range e.Deps {
				if visit(d.Name) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return false
	}
	for _, e := range f.Entries {
		if visit(e.Name) {
			return found
		}
	}
	return nil
}

// Entry returns the entry called name, nil when there is none.
func (f *File) Entry(name string) *Entry {
	for i := range f.Entries {
		if f.Entries[i].Name == name {
			return &f.Entries[i]
		}
	}
	return nil
}

// Order returns the entries to start for names, dependencies first, in
// the file's order where the dependencies leave a choice. With no names:
// every entry that is not disabled. The dependencies of a chosen entry
// are chosen too, disabled or not. A name the file does not define is an
// error.
func (f *File) Order(names []string) ([]string, error) {
	want := map[string]bool{}
	var pull func(name string)
	pull = func(name string) {
		if want[name] {
			return
		}
		want[name] = true
		for _, d := range f.Entry(name).Deps {
			pull(d.Name)
		}
	}
	for _, n := range names {
		if f.Entry(n) == nil {
			return nil, fmt.Errorf("%s defines no process %q (it has %s)", f.Path, n, strings.Join(f.names(), ", "))
		}
		pull(n)
	}
	if len(names) == 0 {
		for _, e := range f.Entries {
			if !e.Disabled {
				pull(e.Name)
			}
		}
	}
	var out []string
	placed := map[string]bool{}
	for len(out) < len(want) {
		for _, e := range f.Entries {
			if !want[e.Name] || placed[e.Name] {
				continue
			}
			ready := true
			for _, d := range e.Deps {
				ready = ready && placed[d.Name]
			}
			if ready {
				placed[e.Name] = true
				out = append(out, e.Name)
			}
		}
	}
	return out, nil
}

func (f *File) names() []string {
	var out []string
	for _, e := range f.Entries {
		out = append(out, e.Name)
	}
	return out
}

// Argv is the command line as btl runs it: its words when it is a plain
// list of words (so that `btl npm run dev`, typed by hand in the same
// directory, is the same task), else sh -c with the line.
func Argv(line string) []string {
	if words, ok := Words(line); ok && len(words) > 0 {
		return words
	}
	return []string{"sh", "-c", line}
}

// Words splits a command line into words when the shell would do nothing
// but split it: words separated by blanks, quoted with '...' or with "..."
// holding no $, ` or \. Anything the shell would expand, redirect or
// interpret (variables, globs, pipes, a leading NAME=value, ~, #) makes ok
// false.
func Words(line string) (words []string, ok bool) {
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, false
			}
			s := line[i+1 : i+1+j]
			if strings.ContainsAny(s, "$`\\") {
				return nil, false
			}
			cur.WriteString(s)
			i += j + 1
			inWord = true
		case strings.IndexByte("|&;<>()$`\\*?[]{}!\n\r", c) >= 0:
			return nil, false
		case !inWord && (c == '~' || c == '#'):
			return nil, false
		case c == '=' && len(words) == 0:
			// NAME=value cmd: an assignment, for the shell to make.
			return nil, false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, true
}

// oneLine replaces line breaks so that an error stays on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
