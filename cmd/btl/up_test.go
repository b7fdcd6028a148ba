package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"btl/core"
	"btl/core/coretest"
)

// writeFile writes a file of the test, failing it on an error.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// upLine matches what btl up says of an entry it started or left running.
var upLine = regexp.MustCompile(`(?m)^\[btl\] (\S+): (started|unchanged), PID (\d+), hash ([0-9a-f]{16})`)

// upTasks reads btl up's output: each entry's task name, how it was
// handled, PID and hash, in the order printed.
type upEntry struct {
	name, how string
	pid       int
	hash      string
}

func upEntries(out string) []upEntry {
	var es []upEntry
	for _, m := range upLine.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[3])
		es = append(es, upEntry{m[1], m[2], pid, m[4]})
	}
	return es
}

func byName(es []upEntry) map[string]upEntry {
	m := map[string]upEntry{}
	for _, e := range es {
		m[e.name] = e
	}
	return m
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool { return coretest.Alive(pid) }

// TestUpProcfile: three entries, each its own task, named, with PORT,
// listed with the project; an entry typed by hand is the same task.
func TestUpProcfile(t *testing.T) {
	u := newUser(t)
	dir := mustReal(t, t.TempDir())
	writeFile(t, filepath.Join(dir, "Procfile"), "# dev\nweb: sh -c 'echo web on $PORT; exec sleep 1001'\napi: echo \"api on $PORT\" && exec sleep 1002\nworker: sleep 1003\n")
	out := u.ok(dir, "up")
	if !strings.HasPrefix(out, "[btl] Project "+dir+": Procfile, 3 entries\n") || !strings.HasSuffix(out, "[btl] Up: 3 started, 0 unchanged\n") {
		t.Errorf("btl up printed:\n%s", out)
	}
	es := upEntries(out)
	if len(es) != 3 || es[0].name != "web" || es[1].name != "api" || es[2].name != "worker" {
		t.Fatalf("entries started: %+v\n%s", es, out)
	}
	for _, e := range es {
		if e.how != "started" || !alive(e.pid) {
			t.Errorf("%s: %s, PID %d alive %v", e.name, e.how, e.pid, alive(e.pid))
		}
	}
	// PORT: 5000 + 100 × index, as foreman gives it.
	st := u.state()
	for i, want := range []string{"web on 5000", "api on 5100"} {
		log := st.Processes[es[i].hash].LogFile
		coretest.Eventually(t, 10*time.Second, want+" in the log", func() bool {
			b, _ := os.ReadFile(log)
			return strings.Contains(string(b), want)
		})
	}
	for _, e := range es {
		task := st.Processes[e.hash]
		if task.Project != dir || task.Entry != e.name || task.Name != e.name || task.Cwd != dir {
			t.Errorf("%s recorded as %+v", e.name, task)
		}
	}
	if out := u.ok(dir, "show", "api"); !strings.Contains(out, "\nProject:   "+dir+" (entry api)\n") {
		t.Errorf("show api:\n%s", out)
	}
	// list: the project in wide, and --project.
	wide := u.ok(dir, "list", "-o", "wide")
	if !strings.Contains(strings.SplitN(wide, "\n", 2)[0], "PROJECT") || strings.Count(wide, " "+dir+"\n") != 3 {
		t.Errorf("list -o wide:\n%s", wide)
	}
	other := t.TempDir()
	u.start(other, "sleep", "1004")
	if got := u.ok(dir, "list", "--project", "."); strings.Count(got, "\n") != 4 || strings.Contains(got, "1004") {
		t.Errorf("list --project . shows:\n%s", got)
	}
	if got := u.ok(other, "list", "--project", "."); got != "No background processes tracked\n" {
		t.Errorf("list --project . elsewhere shows:\n%s", got)
	}
	if js := u.ok(dir, "list", "--json"); !strings.Contains(js, `"project": "`+dir+`"`) || !strings.Contains(js, `"entry": "worker"`) {
		t.Errorf("list --json lacks the project:\n%s", js)
	}
	// The worker typed by hand is the same task: replaced, still named
	// and of the project; btl up leaves the hand's instance running.
	s := u.start(dir, "sleep", "1003")
	if s.hash != es[2].hash || s.killed != es[2].pid {
		t.Errorf("btl sleep 1003 by hand: %+v, want the worker %+v replaced", s, es[2])
	}
	if task := u.state().Processes[s.hash]; task.Name != "worker" || task.Entry != "worker" || task.Project != dir {
		t.Errorf("worker after the hand start: %+v", task)
	}
	again := byName(upEntries(u.ok(dir, "up")))
	if w := again["worker"]; w.how != "unchanged" || w.pid != s.pid {
		t.Errorf("btl up after the hand start: worker %+v, want %d unchanged", w, s.pid)
	}
	// The file gone, down still finds the directory's tasks.
	if err := os.Remove(filepath.Join(dir, "Procfile")); err != nil {
		t.Fatal(err)
	}
	if out := u.ok(dir, "down"); !strings.HasSuffix(out, "[btl] Down: stopped 3 tasks\n") {
		t.Errorf("down without the file:\n%s", out)
	}
}

// chainFile is a process-compose project: db listens on a port, api
// refuses to start without db and answers HTTP after a while, web asks
// api once and says so. Each waits for the one before it to be healthy.
const chainFile = `processes:
  db:
    command: python3 db.py {DB}
    readiness_probe:
      tcp_socket:
        port: {DB}
  api:
    command: python3 api.py {DB} {API}
    depends_on:
      db:
        condition: process_healthy
    readiness_probe:
      http_get:
        host: 127.0.0.1
        port: {API}
        path: /health
  web:
    command: python3 web.py {API}
    working_dir: ./web
    environment:
      - "GREETING=hello from web"
    depends_on:
      api:
        condition: process_healthy
`

const dbPy = `import socket, sys, time
time.sleep(0.3)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("db: listening", flush=True)
while True:
    s.accept()[0].close()
`

const apiPy = `import socket, sys, time, http.server
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
except OSError as e:
    print("api: db is not up:", e, flush=True)
    sys.exit(1)
print("api: db answered", flush=True)
time.sleep(0.3)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
`

const webPy = `import os, sys, time, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=2).read()
print("web: api answered;", os.environ["GREETING"], flush=True)
time.sleep(1000)
`

// chainProject writes the chain project into a new directory.
func chainProject(t *testing.T, db, api string) string {
	t.Helper()
	dir := mustReal(t, t.TempDir())
	if err := os.Mkdir(filepath.Join(dir, "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "process-compose.yaml"), strings.NewReplacer("{DB}", db, "{API}", api).Replace(chainFile))
	writeFile(t, filepath.Join(dir, "db.py"), dbPy)
	writeFile(t, filepath.Join(dir, "api.py"), apiPy)
	writeFile(t, filepath.Join(dir, "web", "web.py"), webPy)
	return dir
}

// TestUpChain: db → api → web, api waiting for db's port and web for
// api's http_get; down stops them in reverse order and keeps them.
func TestUpChain(t *testing.T) {
	u := newUser(t)
	db, api := freePort(t), freePort(t)
	dir := chainProject(t, strconv.Itoa(db), strconv.Itoa(api))
	r := u.btl(dir, "up")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("btl up: %+v", r)
	}
	// Each entry starts once the one before it is ready.
	var steps []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := regexp.MustCompile(`^\[btl\] (\w+): (started|ready after [0-9.]+s: .*)`).FindStringSubmatch(l); m != nil {
			steps = append(steps, m[1]+" "+strings.Fields(m[2])[0])
		}
	}
	want := []string{"db started", "db ready", "api started", "api ready", "web started"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %q, want %q\n%s", steps, want, r.stdout)
	}
	if !strings.Contains(r.stdout, "[btl] db: ready after") || !strings.Contains(r.stdout, "listening on port "+strconv.Itoa(db)) ||
		!strings.Contains(r.stdout, "GET http://127.0.0.1:"+strconv.Itoa(api)+"/health answered") {
		t.Errorf("readiness not said:\n%s", r.stdout)
	}
	es := byName(upEntries(r.stdout))
	st := u.state()
	web := st.Processes[es["web"].hash]
	if web.Cwd != filepath.Join(dir, "web") {
		t.Errorf("web runs in %s, want %s/web", web.Cwd, dir)
	}
	coretest.Eventually(t, 10*time.Second, "web to reach api", func() bool {
		b, _ := os.ReadFile(web.LogFile)
		return strings.Contains(string(b), "web: api answered; hello from web")
	})

	// down: web, then api, then db; all kept as stopped.
	r = u.btl(dir, "down")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("btl down: %+v", r)
	}
	got := regexp.MustCompile(`(?m)^\[btl\] (\w+): stopped \(PID`).FindAllStringSubmatch(r.stdout, -1)
	var order []string
	for _, m := range got {
		order = append(order, m[1])
	}
	if !slices.Equal(order, []string{"web", "api", "db"}) || !strings.HasSuffix(r.stdout, "[btl] Down: stopped 3 tasks\n") {
		t.Errorf("btl down stopped %q:\n%s", order, r.stdout)
	}
	for _, e := range es {
		if alive(e.pid) {
			t.Errorf("%s (PID %d) still runs after down", e.name, e.pid)
		}
		task := u.state().Processes[e.hash]
		if task == nil || task.Status == nil || task.Status.State != core.Stopped || task.Name != e.name {
			t.Errorf("%s after down: %+v", e.name, task)
		}
	}
	// up runs them again.
	r = u.btl(dir, "up")
	if r.code != 0 || strings.Count(r.stdout, ": started, PID") != 3 {
		t.Errorf("up after down: %+v", r)
	}
}

// TestUpFailingReadiness: an entry that fails its condition keeps its
// dependents from starting; btl up says why with its log, and exits 1
// (124 when it is not ready in time).
func TestUpFailingReadiness(t *testing.T) {
	u := newUser(t)
	for _, c := range []struct {
		name    string
		db      string // db's command
		args    []string
		code    int
		said    string // on stderr, besides the log
		logLine string
	}{
		{"ends", `"sh -c 'echo db: cannot open ./data; exit 3'"`, nil, 1, "[btl] db ended (exited 3) before it was ready; the end of its log:", "  db: cannot open ./data"},
		{"too slow", `"sh -c 'echo db: still loading; exec sleep 1000'"`, []string{"--wait-timeout", "1s"}, waitTimeoutExit, "[btl] db not ready after 1s; the end of its log:", "  db: still loading"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := mustReal(t, t.TempDir())
			writeFile(t, filepath.Join(dir, "process-compose.yml"), `processes:
  db:
    command: `+c.db+`
    readiness_probe:
      tcp_socket:
        port: `+strconv.Itoa(freePort(t))+`
  api:
    command: sleep 1000
    depends_on:
      db:
        condition: process_healthy
  web:
    command: sleep 1001
    depends_on:
      api:
        condition: process_started
  docs:
    command: sleep 1002
`)
			r := u.btl(dir, append([]string{"up"}, c.args...)...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d: %+v", r.code, c.code, r)
			}
			for _, s := range []string{c.said + "\n" + c.logLine + "\n", "[btl] api: not started: db failed\n", "[btl] web: not started: api failed\n",
				"Error: db failed; not started: api, web (the others still run; btl down stops them)\n"} {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			es := byName(upEntries(r.stdout))
			if _, ok := es["api"]; ok || len(es) != 2 || es["docs"].how != "started" {
				t.Errorf("started %+v, want db and docs only", es)
			}
			for _, task := range u.state().Processes {
				if task.Entry == "api" || task.Entry == "web" {
					t.Errorf("%s has a task: %+v", task.Entry, task)
				}
			}
			// A stopped task keeps its name: kill, so that the next case's
			// entries get theirs.
			u.ok(dir, "kill", "--all")
		})
	}
}

// TestUpRerunReplacesChanged: after one entry is edited, btl up replaces
// that one and leaves the others' processes as they were; --force
// replaces all.
func TestUpRerunReplacesChanged(t *testing.T) {
	u := newUser(t)
	dir := mustReal(t, t.TempDir())
	procfile := filepath.Join(dir, "Procfile")
	writeFile(t, procfile, "a: sleep 1001\nb: sleep 1002\nc: sh -c 'echo $GREETING; exec sleep 1003'\n")
	first := byName(upEntries(u.ok(dir, "up")))
	for _, c := range []struct {
		name    string
		edit    func()
		changed []string
	}{
		{"command", func() {
			writeFile(t, procfile, "a: sleep 1001\nb: sleep 2002\nc: sh -c 'echo $GREETING; exec sleep 1003'\n")
		}, []string{"b"}},
		// Procfile entries have no environment of their own: .env is
		// every entry's.
		{"environment", func() { writeFile(t, filepath.Join(dir, ".env"), "GREETING=hi\n") }, []string{"a", "b", "c"}},
		{"nothing", func() {}, nil},
	} {
		c.edit()
		out := u.ok(dir, "up")
		now := byName(upEntries(out))
		if len(now) != 3 {
			t.Fatalf("%s: up printed\n%s", c.name, out)
		}
		for n, e := range now {
			changed := slices.Contains(c.changed, n)
			switch {
			case changed && (e.how != "started" || e.pid == first[n].pid):
				t.Errorf("%s changed: %s %+v\n%s", c.name, n, e, out)
			case !changed && (e.how != "unchanged" || e.pid != first[n].pid):
				t.Errorf("%s changed: %s was touched: %+v, was %+v", c.name, n, e, first[n])
			}
			if !alive(e.pid) {
				t.Errorf("%s: %s (PID %d) does not run", c.name, n, e.pid)
			}
		}
		if strings.Count(out, "(definition changed") != len(c.changed) {
			t.Errorf("%s changed: btl up does not say which definitions changed:\n%s", c.name, out)
		}
		for _, n := range c.changed {
			coretest.Eventually(t, 10*time.Second, "the old "+n+" to end", func() bool { return !alive(first[n].pid) })
		}
		first = now
	}
	if c := u.state().Processes[first["c"].hash]; c == nil {
		t.Fatal("c is not recorded")
	} else {
		coretest.Eventually(t, 10*time.Second, "c to say hi", func() bool {
			b, _ := os.ReadFile(c.LogFile)
			return strings.HasSuffix(string(b), "\nhi\n")
		})
	}
	// The old b (another command) is forgotten, not left beside the new.
	if n := len(u.state().Processes); n != 3 {
		t.Errorf("%d tasks recorded, want 3", n)
	}
	out := u.ok(dir, "up", "--force")
	for n, e := range byName(upEntries(out)) {
		if e.how != "started" || e.pid == first[n].pid {
			t.Errorf("--force: %s %+v", n, e)
		}
	}
}

// TestUpTwoProjects: two projects with the same entry names run side by
// side; the second's are qualified by its directory's name, and keep
// their names when run again.
func TestUpTwoProjects(t *testing.T) {
	u := newUser(t)
	root := mustReal(t, t.TempDir())
	shop, blog := filepath.Join(root, "shop"), filepath.Join(root, "blog")
	for _, d := range []string{shop, blog} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(d, "Procfile"), "web: sleep 1001\nworker: sleep 1002\n")
	}
	s := byName(upEntries(u.ok(shop, "up")))
	b := byName(upEntries(u.ok(blog, "up")))
	if len(s) != 2 || s["web"].pid == 0 || len(b) != 2 || b["blog.web"].pid == 0 || b["blog.worker"].pid == 0 {
		t.Fatalf("shop %+v, blog %+v", s, b)
	}
	for _, e := range []upEntry{s["web"], s["worker"], b["blog.web"], b["blog.worker"]} {
		if !alive(e.pid) {
			t.Errorf("%s does not run", e.name)
		}
	}
	if out := u.ok(blog, "logs", "blog.web"); !strings.Contains(out, "sleep 1001") {
		t.Errorf("logs blog.web: %s", out)
	}
	again := byName(upEntries(u.ok(blog, "up")))
	if again["blog.web"].how != "unchanged" || again["blog.worker"].pid != b["blog.worker"].pid {
		t.Errorf("blog again: %+v", again)
	}
	// down of one project leaves the other running.
	u.ok(blog, "down")
	if !alive(s["web"].pid) || !alive(s["worker"].pid) || alive(b["blog.web"].pid) {
		t.Errorf("after blog's down: shop web %v worker %v, blog web %v", alive(s["web"].pid), alive(s["worker"].pid), alive(b["blog.web"].pid))
	}
	if got := u.ok(shop, "list", "--project", "."); strings.Count(got, "running") != 2 {
		t.Errorf("shop's list:\n%s", got)
	}
}

// TestUpBadFiles: a bad file is one line naming the file, the line and
// the key; exit 2; nothing starts.
func TestUpBadFiles(t *testing.T) {
	u := newUser(t)
	for _, c := range []struct {
		name, file, text, want string
	}{
		{"syntax", "process-compose.yaml", "processes:\n  a:\n    command: sleep 1001\n  b:\n    command: [sleep\n", "Error: process-compose.yaml:5: sequence end token ']' not found\n"},
		{"cycle", "process-compose.yaml", "processes:\n  a:\n    command: sleep 1001\n    depends_on:\n      b: {}\n  b:\n    command: sleep 1002\n    depends_on:\n      a: {}\n", "Error: process-compose.yaml:5: processes.a.depends_on: cycle: a → b → a\n"},
		{"unknown condition", "process-compose.yaml", "processes:\n  a:\n    command: sleep 1001\n  b:\n    command: sleep 1002\n    depends_on:\n      a:\n        condition: healthy\n", `Error: process-compose.yaml:8: processes.b.depends_on.a.condition: unknown condition "healthy" (use process_started, process_healthy or process_completed_successfully)` + "\n"},
		{"missing command", "process-compose.yaml", "processes:\n  a:\n    command: sleep 1001\n  b:\n    working_dir: .\n", "Error: process-compose.yaml:4: processes.b.command: missing: each process needs a command\n"},
		{"procfile", "Procfile", "a: sleep 1001\nb sleep 1002\n", `Error: Procfile:2: "b sleep 1002" is not a "name: command" line` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, c.file), c.text)
			r := u.btl(dir, "up")
			if r.code != 2 || r.stderr != c.want || r.stdout != "" {
				t.Errorf("btl up: exit %d\nstdout %q\nstderr %q\nwant   %q", r.code, r.stdout, r.stderr, c.want)
			}
			if n := len(u.state().Processes); n != 0 {
				t.Errorf("%d tasks recorded", n)
			}
		})
	}
	// No project file at all.
	r := u.btl(t.TempDir(), "up")
	if r.code != 2 || !strings.HasPrefix(r.stderr, "Error: no project file in ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("up without a file: %+v", r)
	}
}

// TestUpCompletedAndNamed: btl up <entry> starts it and what it depends
// on, after a one-shot dependency exited 0; keys btl does not read are
// named once.
func TestUpCompletedAndNamed(t *testing.T) {
	u := newUser(t)
	dir := mustReal(t, t.TempDir())
	writeFile(t, filepath.Join(dir, "process-compose.yaml"), `processes:
  migrate:
    command: sh -c 'sleep 0.3; echo migrated > done.txt'
  api:
    command: sh -c 'cat done.txt; exec sleep 1000'
    depends_on:
      migrate:
        condition: process_completed_successfully
    shutdown:
      signal: 2
  extra:
    command: sleep 1001
    shutdown:
      signal: 2
`)
	r := u.btl(dir, "up", "api")
	if r.code != 0 || r.stderr != "Warning: process-compose.yaml: not supported, ignored: processes.api.shutdown (line 9), processes.extra.shutdown (line 13)\n" {
		t.Fatalf("btl up api: %+v", r)
	}
	if !strings.Contains(r.stdout, "[btl] migrate: completed (exited 0)\n[btl] api: started") {
		t.Errorf("api did not start after migrate completed:\n%s", r.stdout)
	}
	es := byName(upEntries(r.stdout))
	if _, ok := es["extra"]; ok || len(es) != 2 {
		t.Errorf("started %+v, want migrate and api", es)
	}
	api := u.state().Processes[es["api"].hash]
	coretest.Eventually(t, 10*time.Second, "api to read what migrate wrote", func() bool {
		b, _ := os.ReadFile(api.LogFile)
		return strings.Contains(string(b), "\nmigrated\n")
	})
	if c := u.btl(dir, "__complete", "up", "api", "").stdout; !strings.HasPrefix(c, "migrate\nextra\n:") {
		t.Errorf("completion of btl up api: %q", c)
	}
	if r := u.btl(dir, "down", "nope"); r.code != 2 || !strings.Contains(r.stderr, `has no task for entry "nope"`) {
		t.Errorf("down nope: %+v", r)
	}
	if r := u.btl(dir, "up", "nope"); r.code != 2 || !strings.Contains(r.stderr, `process-compose.yaml defines no process "nope" (it has migrate, api, extra)`) {
		t.Errorf("up nope: %+v", r)
	}
}

// TestUpInterrupted: Ctrl-C while an entry waits for another ends btl up
// with 130; what started still runs, what waited never starts.
func TestUpInterrupted(t *testing.T) {
	u := newUser(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "process-compose.yaml"), `processes:
  db:
    command: sleep 1000
    ready_log_line: never said
  api:
    command: sleep 1001
    depends_on:
      db:
        condition: process_healthy
`)
	cmd := exec.Command(os.Args[0], "up")
	cmd.Dir, cmd.Env = dir, u.env
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	coretest.Eventually(t, 10*time.Second, "db to start", func() bool { return strings.Contains(out.String(), "[btl] db: started") })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != interruptedExit || errb.String() != "Error: interrupted; the entries started so far still run (btl down stops them)\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	db := upEntries(out.String())
	if len(db) != 1 || !alive(db[0].pid) {
		t.Errorf("db after the interrupt: %+v", db)
	}
	if n := len(u.state().Processes); n != 1 {
		t.Errorf("%d tasks recorded, want db alone", n)
	}
}
