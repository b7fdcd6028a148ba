package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"btl/core"
)

const rootHelp = `btl runs a command in the background and returns at once. Running the same
command again in the same directory replaces the old instance: its whole
process tree is stopped (SIGTERM, up to 2 s, then SIGKILL) before the new one
starts. Everything from the first word that is not a btl flag on is the
command, passed as it is; use -- to run a program named like a btl command.`

const rootExample = `  btl npm run dev                 start (or restart) a dev server
  btl --name api npm run dev      the same, named: btl logs api, btl kill api
  btl --wait-port 5173 npm run dev && npx playwright test
                                  return once the server listens
  btl python3 -m http.server 8080 another task: each command in each directory is its own
  btl list                        what runs, with hashes
  btl logs 93b8 -f                follow a task's output (any unique prefix)
  btl --restart on-failure node server.js
                                  start it again when it crashes
  btl kill 93b8                   stop a task and everything it started
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
	auto           bool          // the backend was picked automatically
	dirs           core.Dirs
	mgr            *core.Manager

	restartFlag string             // --restart
	restart     core.RestartPolicy // parsed --restart
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
			return e.start(cmd, args)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.Flags().SetInterspersed(false)
	root.PersistentFlags().StringVar(&e.backend, "backend", "", "backend to start tasks with: auto, fork, systemd or launchd (default $BTL_BACKEND, else auto)")
	root.Flags().StringVar(&e.name, "name", "", "give the task a name, accepted wherever a hash is (kill api, logs api)")
	root.Flags().IntVar(&e.waitPort, "wait-port", 0, "return once the task listens on this TCP port")
	root.Flags().StringVar(&e.waitLog, "wait-log", "", "return once a line of the task's log matches this regular expression")
	root.Flags().BoolVar(&e.waitAny, "wait", false, "return once the task listens on a TCP port")
	root.Flags().DurationVar(&e.waitTimeout, "wait-timeout", 60*time.Second, "how long --wait, --wait-port and --wait-log wait")
	root.Flags().StringVar(&e.restartFlag, "restart", "no", "start the task again when it ends: no, on-failure[:N] or always[:N] (N restarts in a row, default 10, then it is a crash loop)")
	root.Flags().BoolVar(&e.noUnbuffer, "no-unbuffer", false, "do not set PYTHONUNBUFFERED=1 for the command")
	_ = root.RegisterFlagCompletionFunc("restart", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"no", "on-failure", "always"}, cobra.ShellCompDirectiveNoFileComp
	})
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError("%v (see btl --help)", err)
	})
	root.AddCommand(
		newListCmd(e),
		newLogsCmd(e),
		newKillCmd(e),
		newCleanCmd(e),
		newShowCmd(e),
		newRestartCmd(e),
	)
	return root
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
	e.auto = name == "" || name == "auto"
	b, err := selectBackend(name, dirs)
	if err != nil {
		return err
	}
	store := &core.Store{Dir: dirs.Data, Warn: func(msg string) { fmt.Fprintln(e.stderr, "Warning: "+msg) }, Context: cmd.Context()}
	store.DefaultBackend = unnamedBackend
	e.mgr = &core.Manager{
		Store:   store,
		Dirs:    dirs,
		Backend: b,
		Open:    func(name string) (core.Backend, error) { return openBackend(name, dirs) },
		Names:   availableBackends(),
	}
	return nil
}
