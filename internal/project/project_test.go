package project

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestProcfile(t *testing.T) {
	src := "# the dev processes\nweb: npm run dev\n\napi: python3 -m http.server $PORT\r\nworker:   ./worker --queue=default  \n"
	f, err := Parse("/p/Procfile", []byte(src), 5000)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "web", Line: 2, Command: "npm run dev", Argv: []string{"npm", "run", "dev"}, Env: []string{"PORT=5000"}},
		{Name: "api", Line: 4, Command: "python3 -m http.server $PORT", Argv: []string{"sh", "-c", "python3 -m http.server $PORT"}, Env: []string{"PORT=5100"}},
		{Name: "worker", Line: 5, Command: "./worker --queue=default", Argv: []string{"./worker", "--queue=default"}, Env: []string{"PORT=5200"}},
	}
	if f.Kind != KindProcfile || !reflect.DeepEqual(f.Entries, want) {
		t.Errorf("Parse = %s %+v\nwant %+v", f.Kind, f.Entries, want)
	}
	order, err := f.Order(nil)
	if err != nil || !reflect.DeepEqual(order, []string{"web", "api", "worker"}) {
		t.Errorf("Order = %v, %v", order, err)
	}
}

const chain = `version: "0.5"
environment:
  - "SHARED=1"
processes:
  web:
    command: npm run dev
    working_dir: ./web
    depends_on:
      api:
        condition: process_healthy
  api:
    command: python3 app.py
    environment:
      - "DB_PORT=5432"
      - "SHARED=2"
    depends_on:
      db:
        condition: process_healthy
      migrate:
        condition: process_completed_successfully
    readiness_probe:
      http_get:
        port: 8000
        path: /health
      period_seconds: 1
    availability:
      restart: on_failure
      max_restarts: 3
    shutdown:
      signal: 2
  db:
    command: "postgres -D ./data"
    readiness_probe:
      tcp_socket:
        port: 5432
  migrate:
    command: ./migrate.sh && echo done
    log_location: /tmp/m.log
  docs:
    command: mkdocs serve
    disabled: true
    ready_log_line: Serving on
    shutdown:
      signal: 15
log_level: debug
`

func TestCompose(t *testing.T) {
	f, err := Parse("/p/process-compose.yaml", []byte(chain), 5000)
	if err != nil {
		t.Fatal(err)
	}
	api := f.Entry("api")
	if api == nil || !reflect.DeepEqual(api.Env, []string{"SHARED=1", "DB_PORT=5432", "SHARED=2"}) ||
		api.Restart != "on-failure:3" || api.Ready.HTTP.URL() != "http://127.0.0.1:8000/health" || api.Ready.Period != 1 {
		t.Errorf("api = %+v", api)
	}
	if !reflect.DeepEqual(api.Deps, []Dep{{"db", Healthy, 17}, {"migrate", Completed, 19}}) {
		t.Errorf("api deps = %+v", api.Deps)
	}
	if w := f.Entry("web"); w.Dir != "./web" || !reflect.DeepEqual(w.Argv, []string{"npm", "run", "dev"}) {
		t.Errorf("web = %+v", w)
	}
	if d := f.Entry("db"); d.Ready.Port != 5432 || !reflect.DeepEqual(d.Argv, []string{"postgres", "-D", "./data"}) {
		t.Errorf("db = %+v", d)
	}
	if m := f.Entry("migrate"); !reflect.DeepEqual(m.Argv, []string{"sh", "-c", "./migrate.sh && echo done"}) {
		t.Errorf("migrate = %+v", m)
	}
	if d := f.Entry("docs"); !d.Disabled || d.Ready.LogLine != "Serving on" {
		t.Errorf("docs = %+v", d)
	}
	// Each unsupported key once, with the line of its first use.
	wantIgnored := []string{"processes.api.shutdown (line 29)", "processes.migrate.log_location (line 38)", "processes.docs.shutdown (line 43)", "log_level (line 45)"}
	if !reflect.DeepEqual(f.Ignored, wantIgnored) {
		t.Errorf("Ignored = %q\nwant %q", f.Ignored, wantIgnored)
	}
	for _, c := range []struct {
		names []string
		want  []string
	}{
		{nil, []string{"db", "migrate", "api", "web"}},
		{[]string{"api"}, []string{"db", "migrate", "api"}},
		{[]string{"docs", "db"}, []string{"db", "docs"}},
	} {
		got, err := f.Order(c.names)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Order(%v) = %v, %v; want %v", c.names, got, err, c.want)
		}
	}
	if _, err := f.Order([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `no process "nope"`) {
		t.Errorf("Order(nope) = %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	for _, c := range []struct {
		name, file, src string
		want            string // the whole error line
	}{
		{"syntax", "process-compose.yaml", "processes:\n  web:\n    command: [a\n", "process-compose.yaml:3: sequence end token ']' not found"},
		{"tab", "process-compose.yaml", "processes:\n\tweb: x\n", "process-compose.yaml:2: found character '\\t' that cannot start any token"},
		{"cycle", "process-compose.yaml", "processes:\n  a:\n    command: x\n    depends_on:\n      b: {condition: process_started}\n  b:\n    command: y\n    depends_on:\n      c: {}\n  c:\n    command: z\n    depends_on:\n      a:\n", "process-compose.yaml:5: processes.a.depends_on: cycle: a → b → c → a"},
		{"self", "process-compose.yaml", "processes:\n  a:\n    command: x\n    depends_on:\n      a: {}\n", "process-compose.yaml:5: processes.a.depends_on: cycle: a → a"},
		{"unknown condition", "process-compose.yaml", "processes:\n  a:\n    command: x\n  b:\n    command: y\n    depends_on:\n      a:\n        condition: process_ready\n", `process-compose.yaml:8: processes.b.depends_on.a.condition: unknown condition "process_ready" (use process_started, process_healthy or process_completed_successfully)`},
		{"missing command", "process-compose.yaml", "processes:\n  a:\n    working_dir: /tmp\n", "process-compose.yaml:2: processes.a.command: missing: each process needs a command"},
		{"empty command", "process-compose.yaml", "processes:\n  a:\n    command: \"  \"\n", "process-compose.yaml:2: processes.a.command: missing: each process needs a command"},
		{"no processes", "process-compose.yaml", "version: \"0.5\"\n", "process-compose.yaml:1: processes: missing"},
		{"empty", "process-compose.yml", "", "process-compose.yml: empty file (it needs processes:)"},
		{"unknown dependency", "process-compose.yaml", "processes:\n  a:\n    command: x\n    depends_on:\n      db: {}\n", "process-compose.yaml:5: processes.a.depends_on.db: no such process"},
		{"healthy without probe", "process-compose.yaml", "processes:\n  db:\n    command: x\n  a:\n    command: y\n    depends_on:\n      db:\n        condition: process_healthy\n", "process-compose.yaml:7: processes.a.depends_on.db: process_healthy needs a readiness_probe or ready_log_line on db"},
		{"bad port", "process-compose.yaml", "processes:\n  a:\n    command: x\n    readiness_probe:\n      http_get:\n        port: http\n", "process-compose.yaml:6: processes.a.readiness_probe.http_get.port: must be a TCP port from 1 to 65535"},
		{"bad restart", "process-compose.yaml", "processes:\n  a:\n    command: x\n    availability:\n      restart: exit_on_failure\n", `process-compose.yaml:5: processes.a.availability.restart: unknown policy "exit_on_failure" (btl supports no, on_failure and always)`},
		{"bad name", "process-compose.yaml", "processes:\n  my web:\n    command: x\n", "process-compose.yaml:2: processes.my web: entry names use letters, digits, '.', '_' and '-', and start with a letter or digit"},
		{"duplicate key", "process-compose.yaml", "processes:\n  a:\n    command: x\n  a:\n    command: y\n", `process-compose.yaml:4: mapping key "a" already defined at [2:3]`},
		{"bad env", "process-compose.yaml", "processes:\n  a:\n    command: x\n    environment:\n      - NOVALUE\n", `process-compose.yaml:5: processes.a.environment: "NOVALUE" is not NAME=value`},
		{"procfile line", "Procfile", "web: ok\nthis is not an entry\n", `Procfile:2: "this is not an entry" is not a "name: command" line`},
		{"procfile no command", "Procfile", "web:\n", "Procfile:1: web: no command"},
		{"procfile twice", "Procfile.dev", "web: a\nweb: b\n", "Procfile.dev:2: web: defined twice (first at line 1)"},
		{"procfile empty", "Procfile", "# nothing\n", `Procfile: no entries (lines of "name: command")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.file, []byte(c.src), 5000)
			if err == nil {
				t.Fatalf("Parse accepted it")
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %s\nwant %s", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestWords(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string // nil: the shell is needed
	}{
		{"npm run dev", []string{"npm", "run", "dev"}},
		{"  vite   --port=5173 ", []string{"vite", "--port=5173"}},
		{`python3 -c 'print("hi")'`, []string{"python3", "-c", `print("hi")`}},
		{`echo "a b" ''`, []string{"echo", "a b", ""}},
		{"echo $PORT", nil},
		{`echo "$PORT"`, nil},
		{"PORT=1 node x", nil},
		{"a && b", nil},
		{"a | b", nil},
		{"ls *.go", nil},
		{"cd ~", nil},
		{"x # comment", nil},
		{"echo 'open", nil},
		{"a > log", nil},
		{"a\\ b", nil},
	} {
		got, ok := Words(c.line)
		if c.want == nil {
			if ok {
				t.Errorf("Words(%q) = %q, want the shell", c.line, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Words(%q) = %q, %v; want %q", c.line, got, ok, c.want)
		}
	}
}

func TestDotEnv(t *testing.T) {
	src := "# comment\nexport A=1\nB = two words # note\nC='x # y'\nD=\"line\\nnext\"\n\nE=\n"
	got, err := ParseDotEnv(".env", []byte(src))
	want := []string{"A=1", "B=two words", "C=x # y", "D=line\nnext", "E="}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDotEnv = %q, %v; want %q", got, err, want)
	}
	if _, err := ParseDotEnv(".env", []byte("ok=1\n1BAD=2\n")); err == nil || err.Error() != `.env:2: "1BAD=2" is not NAME=value` {
		t.Errorf("bad line: %v", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	if _, err := Find(dir); err == nil {
		t.Fatal("Find found a file in an empty directory")
	}
	for _, n := range []string{"process-compose.yml", "Procfile", "Procfile.dev"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("web: x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Find(dir)
		if err != nil || filepath.Base(got) != n {
			t.Errorf("after %s: Find = %s, %v", n, got, err)
		}
	}
}
