package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
)

const rootHelp = `btl runs a command in the background and returns at once. Running the same
command again in the same directory replaces the old instance: its whole
process tree is stopped (SIGTERM, up to 2 s, then SIGKILL: --stop-signal and
--stop-timeout change both) before the new one starts. Everything from the first word that is not a btl flag on is the
command, passed as it is; use -- to run a program named like a btl command.

Exit codes of a start (and of btl ensure): 0 started (or kept); 1 an error;
2 a usage error (bad flag, name refused, unreadable --env-file); 3 with
--wait*, the task ended before it was ready; 124 not ready within
--wait-timeout (it still runs); 126 the program is not executable; 127 it
is not found; 130 a --wait* interrupted by Ctrl-C (the task still runs).
Other commands exit 0, 1 on an error, 2 on a usage error.`

const rootExample = `  btl npm run dev                 start (or restart) a dev server
  btl --name api npm run dev      the same, named: btl logs api, btl kill api
  btl --wait-port 5173 npm run dev && npx playwright test
                                  return once the server listens
  btl python3 -m http.server 8080 another task: each command in each directory is its own
  btl list                        what runs, with hashes
  btl logs 93b8 -f                follow a task's output (any unique prefix)
  btl --watch npm run dev         replace it whenever a file here changes
  btl ensure -o json --wait-port 5173 npm run dev
                                  start it unless it runs; print it as JSON
  btl --restart on-failure node server.js
                                  start it again when it crashes
  btl stop api                    stop a task, keep it listed; btl restart api runs it again
  btl restart --all               run every task again
  btl up                          start the project here (Procfile, process-compose.yaml); btl down stops it
  btl kill 93b8                   stop a task and everything it started, and forget it
  btl -- list                     run a program called "list"`

// env holds what every command needs, set up once the flags are parsed.
type env struct {
	stdout, stderr io.Writer
	backend        string        // --backend or BTL_BACKEND
	noUnbuffer     bool          // --no-unbuffer
	name           string        // --name
	waitPort       int           // --wait-port
	waitLog        string        // --wait-log
	waitAny        bool          // --wait
	waitTimeout    time.Duration // --wait-timeout
	ready          *readiness    // what a start waits for, from the flags above
	dirs           core.Dirs
	mgr            *core.Manager

	restartFlag string             // --restart
	restart     core.RestartPolicy // parsed --restart

	stopSignal  string          // --stop-signal
	stopTimeout string          // --stop-timeout
	stop        core.StopPolicy // parsed --stop-signal and --stop-timeout
	startExtras                 // --env-file, --watch, -o json, ensure (startopts.go)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:     "btl [flags] <command> [args...]",
		Short:   "Run commands in the background, one instance per command and directory",
		Long:    rootHelp,
		Example: rootExample,
		Version: buildVersion(),
		Args:    cobra.ArbitraryArgs,
		// The first word: btl's commands, programs on PATH, files.
		ValidArgsFunction: completeStart,
		// The command's own flags belong to the command.
		TraverseChildren:  false,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return e.setup(cmd)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(stderr)
				_ = cmd.Help()
				return &exitError{code: 2, err: fmt.Errorf("no command given")}
			}
			return withSuggestion(cmd, args, e.start(cmd, args))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&e.backend, "backend", "", "backend to start tasks with: "+backends(core.Dirs{}, nil).Choices()+" (default $BTL_BACKEND, else auto)")
	e.addStartFlags(root)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError("%s (see btl %s--help)", flagErrorText(err), subName(cmd))
	})
	root.AddCommand(
		newListCmd(e),
		newLogsCmd(e),
		newKillCmd(e),
		newStopCmd(e),
		newCleanCmd(e),
		newShowCmd(e),
		newRestartCmd(e),
		newUpCmd(e),
		newDownCmd(e),
		newEnsureCmd(e),
	)
	return root
}

// addStartFlags adds the flags of a start to cmd (btl itself, btl ensure).
func (e *env) addStartFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&e.name, "name", "", "give the task a name, accepted wherever a hash is (kill api, logs api)")
	f.IntVar(&e.waitPort, "wait-port", 0, "return once the task listens on this TCP port")
	f.StringVar(&e.waitLog, "wait-log", "", "return once a line of the task's log matches this regular expression")
	f.BoolVar(&e.waitAny, "wait", false, "return once the task listens on a TCP port")
	f.DurationVar(&e.waitTimeout, "wait-timeout", 60*time.Second, "how long --wait, --wait-port and --wait-log wait")
	f.StringVar(&e.restartFlag, "restart", "no", "start the task again when it ends: no, on-failure[:N] or always[:N] (N restarts in a row, default 10, then it is a crash loop)")
	f.StringVar(&e.stopSignal, "stop-signal", "TERM", "the signal that stops the task (kill, stop, a replace): TERM, INT, HUP, QUIT, ...")
	f.StringVar(&e.stopTimeout, "stop-timeout", core.Grace.String(), "how long the task gets after its stop signal before SIGKILL (500ms, 10s, 1m)")
	f.BoolVar(&e.noUnbuffer, "no-unbuffer", false, "do not set PYTHONUNBUFFERED=1 for the command")
	e.addStartExtras(cmd)
	_ = cmd.RegisterFlagCompletionFunc("restart", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"no", "on-failure", "always"}, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("stop-signal", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "KILL"}, cobra.ShellCompDirectiveNoFileComp
	})
}

// touchesTasks reports whether cmd works on tasks: help and completion do
// not, and need neither setup nor signal handling.
func touchesTasks(cmd *cobra.Command) bool {
	switch cmd.Name() {
	case "help", "completion", "bash", "zsh", "fish", "powershell", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return false
	}
	return true
}

// setup refuses root, picks the backend and prepares the state directory.
// Commands that do not touch tasks (help, completion) skip it.
func (e *env) setup(cmd *cobra.Command) error {
	if !touchesTasks(cmd) {
		return nil
	}
	if os.Geteuid() == 0 {
		if os.Getenv("BTL_ALLOW_ROOT") != "1" {
			return &exitError{code: 1, err: fmt.Errorf("btl refuses to run as root; run it as a regular user (or set BTL_ALLOW_ROOT=1 in a container that only has root)")}
		}
		fmt.Fprintln(e.stderr, "Warning: running as root because BTL_ALLOW_ROOT=1")
	}
	// A btl run inside a task must not pass that task's identity on to
	// the helpers it starts: a supervisor carrying the outer BTL_INSTANCE
	// would be stopped with the outer task.
	os.Unsetenv(core.EnvHash)
	os.Unsetenv(core.EnvInstance)
	dirs, err := core.DefaultDirs()
	if err != nil {
		return err
	}
	if err := dirs.Ensure(); err != nil {
		return err
	}
	e.dirs = dirs
	name := e.backend
	if name == "" {
		name = strings.TrimSpace(os.Getenv("BTL_BACKEND"))
	}
	reg := backends(dirs, e.progress)
	b, fallback, err := reg.Choose(name)
	if errors.Is(err, core.ErrUnknownBackend) {
		return usageError("%s", err)
	}
	if err != nil {
		return err
	}
	store := &core.Store{Dir: dirs.Data, Warn: func(msg string) { fmt.Fprintln(e.stderr, "Warning: "+core.OneLine(msg)) }, Context: cmd.Context()}
	store.DefaultBackend = reg.Unnamed()
	e.mgr = &core.Manager{
		Store:    store,
		Dirs:     dirs,
		Backend:  b,
		Fallback: fallback,
		// A task the backend auto mode picked cannot run: said once.
		OnFallback: func(f core.Fallback) { fmt.Fprintf(e.stderr, "btl: %s\n", f) },
		Open:       reg.Open,
		Names:      reg.Detected(),
	}
	return nil
}

// goParseError matches what Go's number and duration parsers add to a bad
// flag value: btl says it in its own words.
var goParseError = regexp.MustCompile(`strconv\.Parse\w+: parsing "[^"]*": (invalid syntax|value out of range)|time: (invalid|unknown unit in) duration.*$`)

// flagErrorText is a flag error as btl says it.
func flagErrorText(err error) string {
	return goParseError.ReplaceAllStringFunc(err.Error(), func(m string) string {
		switch {
		case strings.Contains(m, "out of range"):
			return "out of range"
		case strings.HasPrefix(m, "time:"):
			return "not a duration (such as 500ms, 30s or 2m)"
		}
		return "not a whole number"
	})
}

// subName is "name " for a subcommand, "" for btl itself.
func subName(cmd *cobra.Command) string {
	if cmd.HasParent() {
		return cmd.Name() + " "
	}
	return ""
}

// progress is a line btl prints while a start is under way (launchd: a
// wait for the task's label), where its other start lines go: stdout, or
// stderr with -o json.
func (e *env) progress(msg string) { fmt.Fprintf(e.stdout, "[btl] %s\n", msg) }
