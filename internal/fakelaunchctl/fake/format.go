//go:build linux

package fake

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"syscall"
	"text/template"
)

// Output formats, after the trimmed real capture in the notes. In "service",
// only lines with exactly one leading tab describe the job: the nested blocks
// ("spawn monitor", "resource coalition") reuse "state =" and "pid =" on
// purpose, as real dumps do; "job state" and the inherited/default
// environment blocks are further traps for substring matching.
var formats = template.Must(template.New("").Parse(`
{{- define "service"}}{{.Domain}}/{{.J.Label}} = {
	active count = {{.Active}}
	path = {{.J.Plist}}
	type = LaunchAgent
	spawn monitor = {
		pid = {{.DecoyPID}}
		state = active
	}
	state = {{.J.State}}

	program = {{.J.Program}}
	arguments = {
{{range .J.Arguments}}		{{.}}
{{end}}	}

{{with .J.WorkingDirectory}}	working directory = {{.}}

{{end}}{{with .J.StdoutPath}}	stdout path = {{.}}
{{end}}{{with .J.StderrPath}}	stderr path = {{.}}
{{end}}	inherited environment = {
		SSH_AUTH_SOCK => /private/tmp/com.apple.launchd.fake/Listeners
	}

	default environment = {
		PATH => /usr/bin:/bin:/usr/sbin:/sbin
	}

	environment = {
{{range .Env}}		{{.}}
{{end}}	}

	domain = {{.Domain}} [{{.ASID}}]
	exit timeout = {{.J.ExitTimeout}}
	runs = {{.J.Runs}}
{{if .Running}}	pid = {{.J.PID}}
{{end}}	{{.ExitLine}}
	resource coalition = {
		ID = 4242
		type = resource
		state = active
		active count = {{.Active}}
	}
	spawn type = {{.SpawnType}}
{{with .JobState}}	job state = {{.}}
{{end}}	properties = {{if .J.RunAtLoad}}runatload | {{end}}inferred program
}
{{end}}

{{- define "domain"}}{{.Domain}} = {
	type = {{if eq .Kind "gui"}}login{{else}}user{{end}}
	handle = {{if eq .Kind "gui"}}{{.ASID}}{{else}}{{.UID}}{{end}}
	active count = {{.Active}}
	service count = {{len .Services}}
	active service count = {{.Active}}
	creator = {{if eq .Kind "gui"}}loginwindow[170]{{else}}launchd[1]{{end}}
	security context = {
		uid = {{.UID}}
		asid = {{.ASID}}
	}

	services = {
{{range .Services}}		{{.}}
{{end}}	}

	properties = bootstrapped
}
{{end}}

{{- define "list"}}{
{{with .J.StdoutPath}}	"StandardOutPath" = "{{.}}";
{{end}}{{if eq (len .Sessions) 1}}	"LimitLoadToSessionType" = "{{index .Sessions 0}}";
{{else}}	"LimitLoadToSessionType" = (
{{range .Sessions}}		"{{.}}";
{{end}}	);
{{end}}{{with .J.StderrPath}}	"StandardErrorPath" = "{{.}}";
{{end}}	"Label" = "{{.J.Label}}";
	"OnDemand" = true;
	"LastExitStatus" = {{.Status}};
{{if .Running}}	"PID" = {{.J.PID}};
{{end}}	"Program" = "{{.J.Program}}";
	"ProgramArguments" = (
{{range .J.Arguments}}		"{{.}}";
{{end}}	);
};
{{end}}`))

// view is what the templates see.
type view struct {
	Domain, Kind string
	UID, ASID    int
	J            *job
	Running      bool
	Active       int
	DecoyPID     int      // the nested "pid =": the monitor, or launchd's 1
	Env          []string // "KEY => value", sorted
	ExitLine     string
	SpawnType    string
	JobState     string   // top-level "job state" decoy; "" omits it
	Status       int      // list <label>: raw wait status
	Sessions     []string // LimitLoadToSessionType
	Services     []string // print <domain> rows
}

// newView prepares job j of domain t (nil for the domain itself).
func newView(t target, j *job) *view {
	v := &view{Domain: t.domain(), Kind: t.kind, UID: t.id, ASID: 100003, J: j, DecoyPID: 1}
	if t.kind == "gui" {
		v.ASID = 100008
	}
	if j == nil {
		return v
	}
	v.Running = j.State == stateRunning && j.PID > 0
	if v.Running {
		v.Active, v.JobState = 1, "running"
	} else if j.Exited {
		v.JobState, v.Status = "exited", j.WaitStatus
	}
	if j.MonitorPID > 0 {
		v.DecoyPID = j.MonitorPID
	}
	for k, val := range j.Environment {
		v.Env = append(v.Env, k+" => "+val)
	}
	sort.Strings(v.Env)
	v.ExitLine = exitLine(j)
	v.SpawnType = map[string]string{"Interactive": "interactive (4)", "Adaptive": "adaptive (2)",
		"Background": "background (1)"}[j.ProcessType]
	if v.SpawnType == "" {
		v.SpawnType = "daemon (3)"
	}
	v.Sessions = j.SessionTypes
	if len(v.Sessions) == 0 && t.kind == "user" {
		v.Sessions = []string{"Background"}
	} else if len(v.Sessions) == 0 {
		v.Sessions = []string{"Aqua"}
	}
	return v
}

// signalNames are macOS strsignal texts, keyed by the (Linux) signal number.
var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "Hangup", syscall.SIGINT: "Interrupt", syscall.SIGQUIT: "Quit",
	syscall.SIGILL: "Illegal instruction", syscall.SIGTRAP: "Trace/BPT trap",
	syscall.SIGABRT: "Abort trap", syscall.SIGBUS: "Bus error",
	syscall.SIGFPE: "Floating point exception", syscall.SIGKILL: "Killed",
	syscall.SIGUSR1: "User defined signal 1", syscall.SIGSEGV: "Segmentation fault",
	syscall.SIGUSR2: "User defined signal 2", syscall.SIGPIPE: "Broken pipe",
	syscall.SIGALRM: "Alarm clock", syscall.SIGTERM: "Terminated",
}

// exitLine is the "last exit code" / "last terminating signal" line.
func exitLine(j *job) string {
	ws := syscall.WaitStatus(j.WaitStatus)
	switch {
	case !j.Exited:
		return "last exit code = (never exited)"
	case j.ExitReason != "":
		return "last exit reason = " + j.ExitReason
	case ws.Signaled():
		name, ok := signalNames[ws.Signal()]
		if !ok {
			name = "Signal " + strconv.Itoa(int(ws.Signal()))
		}
		return fmt.Sprintf("last terminating signal = %s: %d", name, int(ws.Signal()))
	case ws.ExitStatus() == exConfig:
		return "last exit code = 78: EX_CONFIG"
	}
	return "last exit code = " + strconv.Itoa(ws.ExitStatus())
}

// writeService writes "print <domain>/<label>".
func writeService(w io.Writer, t target, j *job) {
	_ = formats.ExecuteTemplate(w, "service", newView(t, j))
}

// writeListDict writes "list <label>": "PID" only while running,
// "LastExitStatus" as the raw wait status (exit 1 -> 256, SIGTERM -> 15).
func writeListDict(w io.Writer, t target, j *job) {
	_ = formats.ExecuteTemplate(w, "list", newView(t, j))
}

// writeDomain writes "print <domain>"; each service row shows the pid (0
// when not running), the last exit status ("-" when never exited), the label.
func writeDomain(w io.Writer, t target, jobs []*job) {
	v := newView(t, nil)
	for _, j := range jobs {
		jv := newView(t, j)
		status := "-"
		if j.Exited {
			status = strconv.Itoa(j.exitDesc())
		}
		v.Active += jv.Active
		v.Services = append(v.Services, fmt.Sprintf("%8d %6s \t%s", j.PID, status, j.Label))
	}
	_ = formats.ExecuteTemplate(w, "domain", v)
}
