//go:build linux

// Package fake is a fake of macOS launchctl(1) for Linux tests of btl's
// launchd backend. Command fakelaunchctl wraps it; a test binary can
// impersonate launchctl by calling Main. It keeps launchd's per-user domains
// as JSON files in a state directory and really runs the jobs it
// bootstraps, with launchd's process rules: own session (pgid == pid), exact
// environment, stdin /dev/null, appended log files, exit status or
// terminating signal recorded, SIGTERM to the rest of the process group when
// the main process exits.
//
// # Adversarial by default
//
// The fake does not model launchd's happy path only. By default, as real
// Macs do (sources in brackets, listed below; docs/launchd.md has the
// same with more detail):
//
//   - bootout is asynchronous: a booted-out label lingers 50-500 ms in
//     state SIGTERMed or exited; meanwhile print shows it, bootstrap of it
//     fails with 5 and bootout answers 36 or 37 at random [B1 B2]. The
//     lengths are not measured anywhere; "tens to hundreds of ms" is the
//     launchd notes' estimate.
//   - For a while after a bootout (drawn per bootout in 0-6 s), bootstrap
//     of the same label fails with 5, even once print no longer shows it
//     [B1 B3].
//   - The caller has a session, Aqua (GUI login) or Background (ssh),
//     printed by `managername` [H1]. `list` shows only the caller's
//     session's domain (gui for Aqua, user otherwise) [L1]. A Background
//     caller's bootstrap into gui fails with 125 [S1 S4 S5].
//   - bootstrap into user/<uid> of a job whose LimitLoadToSessionType does
//     not list Background fails with 125 (the key defaults to Aqua)
//     [S2 S3 S5].
//   - A label loaded in one of the user's domains makes its bootstrap into
//     the other fail with 5. No source shows this (the homebrew-services
//     threads once cited show other failures); it is kept as the worse case
//     for a caller.
//   - bootout of an unknown label answers 113 [B1]; print of a missing
//     domain answers 112 or 125 at random [L1].
//   - bootstrap returns while the job is "spawning": its program runs
//     50-300 ms later [N1].
//   - A job whose WorkingDirectory (or log file) cannot be opened, or whose
//     program cannot be run, ends with "last exit code = 78: EX_CONFIG" [L1];
//     so does one whose working directory, program or log file is in a
//     place macOS protects from launchd jobs: /Volumes and the home
//     folder's Documents, Desktop, Downloads, iCloud Drive and
//     CloudStorage [T1 T2 T3 T4].
//   - A job runs with a soft RLIMIT_NOFILE of 256 and umask 022 unless the
//     plist sets SoftResourceLimits/HardResourceLimits NumberOfFiles and
//     Umask [P1 R1 R2].
//   - The default ExitTimeOut is 5 s [P1 L1].
//   - XPC_SERVICE_NAME is the label, unless the plist sets it: whether
//     launchd overrides a value the plist gives is not known, and the fake
//     keeps the plist's (the worse case).
//   - A child that leaves the job's process group (setsid) is not signalled
//     when the main process exits, nor by bootout [G1].
//   - KeepAlive: a job that ends is spawned again, as launchd does, when
//     KeepAlive is true, or when a condition of its KeepAlive dictionary
//     holds: SuccessfulExit true after exit 0, false after any other end
//     (a non-zero code or a signal), PathState when a path's existence is
//     what its value asks [P1]; never after a bootout. It is spawned
//     no sooner than ThrottleInterval (default 10 s) after its last spawn
//     [P1], "spawn scheduled" meanwhile [K1]; runs counts every spawn [L1].
//
// With options (see Environment): print shows only "last exit reason =
// ..." for how a job ended, or a job is loaded and never run [X1]; bootout
// of a loaded job is refused with a code [D1].
//
// All time-based behaviour (linger, the bootstrap-5 window, spawning,
// ThrottleInterval) runs on the fake's clock: real time, or a file the
// test moves (FAKE_LAUNCHCTL_CLOCK, AdvanceClock). ExitTimeOut waits on
// real processes and stays on real time.
//
// Sources:
//
//	L1  the launchd notes' real `launchctl print` captures; launchctl(1)
//	P1  launchd.plist(5): ExitTimeOut, SoftResourceLimits, HardResourceLimits, Umask,
//	    KeepAlive (SuccessfulExit "implies that RunAtLoad is set to true";
//	    PathState), ThrottleInterval ("by default, jobs will not be spawned
//	    more than once every 10 seconds")
//	B1  headroomlabs-ai/headroom#1289: bootstrap right after bootout -> 5 for
//	    about 5 s on macOS 26.5.1 (10 tries of 5, then 0); back-to-back -> 37;
//	    kickstart after bootout -> 113
//	B2  oneprolabs/hyperfilelens#939: bootout removes the service
//	    asynchronously, print shows it during teardown;
//	    bobmatnyc/trusty-tools#6618: bootstrap right after bootout fails
//	    with 5, a retry seconds later succeeds
//	B3  tuist/tuist#10143: sleeps 3 s between bootout and bootstrap
//	H1  Homebrew/homebrew-services#528: `launchctl managername` -> Aqua
//	S1  nix-community/home-manager#4413, Mic92/sops-nix#966: "Bootstrap
//	    failed: 125: Domain does not support specified action" for gui/<uid>
//	    over ssh
//	S2  geldata/gel-cli#740: LimitLoadToSessionType Background "is required
//	    for user/ services"
//	S3  Mic92/sops-nix#966: without LimitLoadToSessionType a LaunchAgent
//	    defaults to Aqua, which maps to gui/<uid>
//	S4  rjwalters/loom#4130: bootstrap gui/$UID fails over SSH with 125
//	S5  duh17/oppi#31: over ssh without a GUI login, 125 and "Service cannot
//	    load in requested session"
//	N1  NixOS/nix#5698: launchd's log shows "spawn scheduled", "spawning",
//	    then "xpcproxy" before the program runs; how long it lasts is not
//	    measured: scripts/mac-smoke checks such a start on a Mac
//	R1  Homebrew/legacy-homebrew#45595: launchd agents' soft limit is 256
//	R2  pingdotgg/t3code#11055: `launchctl limit maxfiles` 256, EMFILE in
//	    file watchers
//	T1  herdrdev/herdr#390: a process reparented to launchd gets EPERM in
//	    ~/Downloads, ~/Desktop, ~/Documents
//	T2  garrytan/gbrain#5014: a launchd job gets "Operation not permitted"
//	    on /Volumes/<external>; the shell does not
//	T3  nix-darwin/nix-darwin#1334: a launchd agent is denied an external
//	    drive that the terminal reads
//	T4  nextcloud/desktop#9225: OneDrive's folder (in ~/Library/CloudStorage)
//	    is TCC-protected like Documents
//	G1  launchd notes: launchd SIGTERMs the rest of the job's process group
//	    when the main process exits; a setsid child is not in it
//	K1  TOSS-Soft/toss-agent-runtime#38: a failing KeepAlive job shows
//	    "spawn scheduled" with a growing runs count
//	X1  traycerai/traycer#1791: "last exit reason" instead of a code; a job
//	    just loaded shows no pid and "(never exited)"
//	D1  DeterminateSystems/nix-installer#1187: "Boot-out failed: 5:
//	    Input/output error", the job stays
//
// Not sources: Homebrew/homebrew-core#115306 is about `launchctl enable`
// answering 125, not bootstrap; Andersbakken/rtags#514 reports that
// HardResourceLimits did not help there; the open-source launchd of the
// OS X 10.9 era is no evidence of current behaviour.
//
// # Invocation
//
//	launchctl bootstrap <domain> </abs/path.plist>
//	launchctl bootout <domain>/<label>
//	launchctl bootout <domain> </abs/path.plist>
//	launchctl print <domain>
//	launchctl print <domain>/<label>
//	launchctl kill <SIGNAME|NAME|signum> <domain>/<label>
//	launchctl list
//	launchctl list <label>
//	launchctl managername
//
// <domain> is gui/<uid> or user/<uid>; only the caller's own uid exists.
// Anything else gets usage text on stderr and exit 64.
//
// # Environment
//
//	FAKE_LAUNCHCTL_STATE=<dir>          required; state, logs (exit 64 if unset)
//	FAKE_LAUNCHCTL_SESSION=Aqua|Background
//	                                    the caller's session (default Aqua, or
//	                                    Background with NO_GUI)
//	FAKE_LAUNCHCTL_NO_GUI=1             no gui domain (no GUI login): print/kill
//	                                    gui/... -> 112 or 125, bootstrap/bootout
//	                                    gui/... -> 125
//	FAKE_LAUNCHCTL_MANAGERNAME=<name>   what managername prints, whatever the
//	                                    session (as in a tmux server whose
//	                                    bootstrap namespace is not the GUI's)
//	FAKE_LAUNCHCTL_SPAWN_DELAY=<dur>    fixed length of the spawning phase
//	FAKE_LAUNCHCTL_LINGER=<dur>         fixed time a booted-out label lingers
//	FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT=<dur>
//	                                    fixed time, from a bootout, during which
//	                                    bootstrap of the label fails with 5
//	                                    (default: drawn in 0-6 s) [B1]
//	FAKE_LAUNCHCTL_BOOTOUT_36=1         bootout of a loaded job returns 36 at once
//	                                    and tears down in the background (the job
//	                                    lingers after at least 200ms)
//	FAKE_LAUNCHCTL_BOOTOUT_FAIL=<code>  bootout of a loaded job fails with code
//	                                    and leaves it loaded [D1]
//	FAKE_LAUNCHCTL_REFUSE=1             every bootstrap fails with 5
//	FAKE_LAUNCHCTL_NEVER_RUN=1          jobs are loaded but never run [X1]
//	FAKE_LAUNCHCTL_EXIT_REASON=<text>   print shows "last exit reason = <text>"
//	                                    instead of a job's exit code [X1]
//	FAKE_LAUNCHCTL_PROTECTED=<dirs>     colon-separated places jobs may not use
//	                                    ("none": none; default as above)
//	FAKE_LAUNCHCTL_CLOCK=<file>         the clock is this file, moved only by
//	                                    AdvanceClock (see clock.go)
//	FAKE_LAUNCHCTL_CLOCK_STEP=<dur>     with CLOCK: every call moves it by dur
//
// # Files in the state directory
//
//	calls.log       one line per call (hidden helper calls excluded):
//	                the arguments after argv[0] joined by single spaces, a tab,
//	                the decimal exit code, "\n". Example:
//	                "bootstrap gui/501 /tmp/x/job.plist\t0"
//	diag.log        free-form reasons for failures, to debug tests
//	gui-<uid>.json  domain state (and .lock for flock); same for user-<uid>
//
// # Exit codes and stderr (first line(s) exact)
//
//	bootstrap duplicate / lingering / busy /
//	  loaded in the other domain / bad plist:  5  "Bootstrap failed: 5: Input/output error"
//	bootstrap into gui, NO_GUI or Background,
//	  or into user without Background:     125  "Bootstrap failed: 125: Domain does not support specified action"
//	bootstrap/bootout in another domain:     1  "Bootstrap failed: 1: Operation not permitted" ("Boot-out failed: ...")
//	bootout not loaded:                    113  "Boot-out failed: 113: Could not find specified service"
//	bootout lingering:                  36, 37  "Boot-out failed: 36: Operation now in progress",
//	                                            "Boot-out failed: 37: Operation already in progress"
//	bootout with BOOTOUT_36:                36  "Boot-out failed: 36: Operation now in progress"
//	bootout with BOOTOUT_FAIL=N:             N  "Boot-out failed: N: <strerror>"
//	print/kill missing or foreign domain:  112  "Bad request.\nCould not find domain for user gui: <uid>"
//	                                            (user/<uid>: "uid: <uid>", system: "system")
//	                                       125  "Domain does not support specified action" (at random)
//	print/kill missing service:            113  "Bad request.\nCould not find service \"<label>\" in domain for user gui: <uid>"
//	                                            (user domain: "... in domain for uid: <uid>")
//	kill of a job that is not running:       3  "Could not kill service \"<label>\": 3: No such process"
//	list <label> unknown:                  113  "Could not find service \"<label>\" in domain for port"
//	usage errors, unknown subcommands:      64
//
// Hidden subcommands (__monitor, __teardown) re-execute this binary, found
// with os.Executable, as detached helpers; they are not part of the contract.
package fake

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Environment variables read by the fake.
const (
	envState         = "FAKE_LAUNCHCTL_STATE"
	envNoGUI         = "FAKE_LAUNCHCTL_NO_GUI"
	envBusy          = "FAKE_LAUNCHCTL_BUSY_AFTER_BOOTOUT"
	envClock         = "FAKE_LAUNCHCTL_CLOCK"
	envLinger        = "FAKE_LAUNCHCTL_LINGER"
	envExitReason    = "FAKE_LAUNCHCTL_EXIT_REASON"
	envNeverRun      = "FAKE_LAUNCHCTL_NEVER_RUN"
	envProtected     = "FAKE_LAUNCHCTL_PROTECTED"
	envClockStep     = "FAKE_LAUNCHCTL_CLOCK_STEP"
	envBootout36     = "FAKE_LAUNCHCTL_BOOTOUT_36"
	envBootoutFail   = "FAKE_LAUNCHCTL_BOOTOUT_FAIL"
	envSession       = "FAKE_LAUNCHCTL_SESSION"
	envSpawnDelay    = "FAKE_LAUNCHCTL_SPAWN_DELAY"
	envRefuse        = "FAKE_LAUNCHCTL_REFUSE"
	envManagerName   = "FAKE_LAUNCHCTL_MANAGERNAME"
	sessionAqua      = "Aqua"
	sessionBG        = "Background"
	hiddenMonitor    = "__monitor"
	hiddenTeardown   = "__teardown"
	exUsage          = 64
	exConfig         = 78 // EX_CONFIG: launchd's code for a job it cannot spawn
	callsLogName     = "calls.log"
	diagLogName      = "diag.log"
	defaultPath      = "/usr/bin:/bin:/usr/sbin:/sbin"
	defaultExitTimer = 5
	// defaultThrottle is launchd's ThrottleInterval: a job is not spawned
	// more than once every 10 seconds [P1].
	defaultThrottle  = 10
	defaultSoftFiles = 256
	defaultUmask     = 0o022
)

// Main executes one launchctl invocation (args excludes argv[0]) and returns
// its exit code. Every call except the hidden helpers is appended to
// calls.log. The helpers re-execute os.Executable with the same environment,
// so a program that calls Main must call it again when re-executed so.
func Main(args []string, stdout, stderr io.Writer) int {
	dir, err := filepath.Abs(os.Getenv(envState)) // helpers run in /
	if os.Getenv(envState) == "" || err != nil {
		fmt.Fprintf(stderr, "fakelaunchctl: %s is not set\n", envState)
		return exUsage
	}
	clk, step := newClock()
	c := &cli{st: store{dir: dir, clk: clk}, clk: clk, out: stdout, err: stderr, uid: os.Getuid(),
		noGUI: os.Getenv(envNoGUI) == "1", session: os.Getenv(envSession)}
	if c.session == "" {
		c.session = sessionAqua
		if c.noGUI {
			c.session = sessionBG
		}
	}
	if len(args) > 0 && (args[0] == hiddenMonitor || args[0] == hiddenTeardown) {
		return c.hidden(args)
	}
	code := c.dispatch(args)
	if fc, ok := clk.(fileClock); ok && step > 0 {
		// Time passes with the calls: a caller that polls makes progress
		// on the clock, and no call sees time move under it.
		if _, err := AdvanceClock(fc.path, step); err != nil {
			c.diag("clock: %v", err)
		}
	}
	c.appendLine(callsLogName, strings.Join(args, " ")+"\t"+strconv.Itoa(code))
	return code
}

// appendLine appends line and a newline to the named file in the state
// directory, in one O_APPEND write so concurrent calls do not interleave.
func (c *cli) appendLine(name, line string) {
	f, err := os.OpenFile(filepath.Join(c.st.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, _ = f.WriteString(line + "\n")
		_ = f.Close()
	}
}

// cli carries one invocation's context.
type cli struct {
	st    store
	clk   clock
	out   io.Writer
	err   io.Writer
	uid   int
	noGUI bool
	// session is the caller's session type: Aqua (a GUI login) or
	// Background (ssh, or anything else outside the GUI login).
	session string
}

func (c *cli) dispatch(args []string) int {
	if len(args) == 0 {
		return c.usage("")
	}
	rest := args[1:]
	switch args[0] {
	case "bootstrap":
		return c.bootstrap(rest)
	case "bootout":
		return c.bootout(rest)
	case "print":
		return c.print(rest)
	case "kill":
		return c.kill(rest)
	case "list":
		return c.list(rest)
	case "managername":
		if len(rest) != 0 {
			return c.usage("managername")
		}
		fmt.Fprintln(c.out, cmp.Or(os.Getenv(envManagerName), c.session))
		return 0
	}
	fmt.Fprintf(c.err, "Unrecognized subcommand: %s\n", args[0])
	return c.usage("")
}

var usages = map[string]string{
	"bootstrap":   "Usage: launchctl bootstrap <domain-target> [service-path service-path2 ...] | <service-target>",
	"bootout":     "Usage: launchctl bootout <domain-target> [service-path1 service-path2 ...] | <service-target>",
	"print":       "Usage: launchctl print <service-target|domain-target>",
	"kill":        "Usage: launchctl kill <signal-number|signal-name> <service-target>",
	"list":        "Usage: launchctl list [service-name]",
	"managername": "Usage: launchctl managername",
}

// usage prints the usage of sub (or the general usage) and returns 64.
func (c *cli) usage(sub string) int {
	if u, ok := usages[sub]; ok {
		fmt.Fprintln(c.err, u)
		return exUsage
	}
	fmt.Fprint(c.err, "Usage: launchctl <subcommand> ... | help [subcommand]\n"+
		"Subcommands (this fake implements only these):\n"+
		"\tbootstrap       Bootstraps a domain or a service into a domain.\n"+
		"\tbootout         Tears down a domain or removes a service from a domain.\n"+
		"\tprint           Prints a description of a domain or service.\n"+
		"\tkill            Sends a signal to the service instance.\n"+
		"\tlist            Lists information about services.\n"+
		"\tmanagername     Prints the name of current launchd session.\n")
	return exUsage
}

// fail writes msg and a newline to stderr and returns code.
func (c *cli) fail(code int, msg string) int {
	fmt.Fprintln(c.err, msg)
	return code
}

// diag appends a debugging reason to diag.log.
func (c *cli) diag(format string, a ...any) {
	c.appendLine(diagLogName, fmt.Sprintf(format, a...))
}

// target is a parsed domain or service specifier such as gui/501/com.x.
type target struct {
	kind  string // gui, user or system
	id    int    // uid; 0 for system
	label string // empty for a domain target
}

// parseTarget parses s; ok is false for an unrecognized specifier.
func parseTarget(s string) (t target, ok bool) {
	parts := strings.SplitN(s, "/", 3)
	t.kind = parts[0]
	switch t.kind {
	case "system":
		if len(parts) > 1 {
			t.label = strings.Join(parts[1:], "/")
		}
		return t, true
	case "gui", "user":
		if len(parts) < 2 {
			return t, false
		}
		id, err := strconv.Atoi(parts[1])
		if err != nil || id < 0 {
			return t, false
		}
		t.id = id
		if len(parts) == 3 {
			t.label = parts[2]
		}
		return t, true
	}
	return t, false
}

// domain returns the domain part, e.g. "gui/501".
func (t target) domain() string {
	if t.kind == "system" {
		return "system"
	}
	return t.kind + "/" + strconv.Itoa(t.id)
}

// desc is how launchctl names the domain in "Could not find ..." messages.
func (t target) desc() string {
	switch t.kind {
	case "gui":
		return "user gui: " + strconv.Itoa(t.id)
	case "user":
		return "uid: " + strconv.Itoa(t.id)
	}
	return "system"
}

// own reports whether t names one of the caller's domains (gui or user).
func (c *cli) own(t target) bool {
	return t.kind != "system" && t.id == c.uid
}

// exists reports whether t's domain exists (own and, for gui, not NO_GUI).
func (c *cli) exists(t target) bool {
	return c.own(t) && !(t.kind == "gui" && c.noGUI)
}

// callerDomains is the domain `launchctl list` and `list <label>` look in:
// the caller's session's, gui for Aqua, user otherwise.
func (c *cli) callerDomains() []target {
	t := target{kind: "user", id: c.uid}
	if c.session == sessionAqua {
		t.kind = "gui"
	}
	if !c.exists(t) {
		return nil
	}
	return []target{t}
}

// otherDomain returns the caller's domain of the other kind (gui for user
// and the reverse): a label loaded there blocks a bootstrap into t.
func (c *cli) otherDomain(t target) target {
	o := target{kind: "gui", id: t.id}
	if t.kind == "gui" {
		o.kind = "user"
	}
	return o
}
