package launchd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"howett.net/plist"

	"btl/core"
	"btl/internal/regular"
)

// agent is the launchd.plist of one task.
type agent struct {
	Label string `plist:"Label"`
	// Program is the launcher; it records the task's PID and then executes
	// ProgramArguments, whose first element is the resolved command.
	Program              string            `plist:"Program"`
	ProgramArguments     []string          `plist:"ProgramArguments"`
	WorkingDirectory     string            `plist:"WorkingDirectory"`
	EnvironmentVariables map[string]string `plist:"EnvironmentVariables"`
	StandardOutPath      string            `plist:"StandardOutPath"`
	StandardErrorPath    string            `plist:"StandardErrorPath"`
	RunAtLoad            bool              `plist:"RunAtLoad"`
	// KeepAlive is false, or for --restart (see keepAlive) true or a
	// dictionary; ThrottleInterval then spaces the spawns.
	KeepAlive           any    `plist:"KeepAlive"`
	ThrottleInterval    int    `plist:"ThrottleInterval,omitempty"`
	ExitTimeOut         int    `plist:"ExitTimeOut"`
	ProcessType         string `plist:"ProcessType"`
	AbandonProcessGroup bool   `plist:"AbandonProcessGroup"`
	// LimitLoadToSessionType is Background in the user/<uid> domain.
	LimitLoadToSessionType string `plist:"LimitLoadToSessionType,omitempty"`
	// The caller's open-files limits and umask (launchd's own would be a
	// soft limit of 256 and its umask).
	SoftResourceLimits *resourceLimits `plist:"SoftResourceLimits,omitempty"`
	HardResourceLimits *resourceLimits `plist:"HardResourceLimits,omitempty"`
	Umask              *int            `plist:"Umask,omitempty"`
}

// newAgent returns the plist of spec for domain dom, run through the
// launcher exe, which reports to the file report, with the caller's limits.
func newAgent(spec core.Spec, dom, exe, report string, lim callerLimits) agent {
	env := make(map[string]string, len(spec.Env)+1)
	for _, kv := range spec.Env {
		// A property list is XML: variables that are not UTF-8 cannot go in.
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" && utf8.ValidString(kv) && !launchdOwned[k] {
			env[k] = v
		}
	}
	env[LaunchEnv] = report
	env[LabelEnv] = Label(spec.Hash)
	env[LogEnv] = spec.LogFile
	env[CommandEnv] = spec.Command
	if spec.Restart.Enabled() {
		env[RestartEnv] = spec.Restart.String()
	}
	a := agent{
		Label:                Label(spec.Hash),
		Program:              exe,
		ProgramArguments:     append([]string{spec.Path}, spec.Argv[1:]...),
		WorkingDirectory:     spec.Dir,
		EnvironmentVariables: env,
		StandardOutPath:      spec.LogFile,
		StandardErrorPath:    spec.LogFile,
		RunAtLoad:            true,
		KeepAlive:            keepAlive(spec.Restart, report),
		// Whole seconds, rounded up: 0 would be no timeout to launchd
		// (launchd.plist(5)), and btl stops the tree itself first anyway.
		ExitTimeOut:         int(max((spec.StopPolicy().Timeout+time.Second-1)/time.Second, 1)),
		ProcessType:         "Interactive",
		AbandonProcessGroup: false,
	}
	if spec.Restart.Enabled() {
		a.ThrottleInterval = throttle
	}
	if strings.HasPrefix(dom, "user/") {
		a.LimitLoadToSessionType = "Background"
	}
	if lim.softFiles > 0 {
		a.SoftResourceLimits = &resourceLimits{NumberOfFiles: lim.softFiles}
	}
	if lim.hardFiles > 0 {
		a.HardResourceLimits = &resourceLimits{NumberOfFiles: lim.hardFiles}
	}
	if lim.umask >= 0 {
		a.Umask = &lim.umask
	}
	return a
}

// launchdOwned are the variables launchd sets for a job itself: the
// caller's (Terminal sets XPC_SERVICE_NAME=0, IDEs their own) must not
// reach the plist, where it is not known whether launchd overrides them.
var launchdOwned = map[string]bool{"XPC_SERVICE_NAME": true, "XPC_FLAGS": true}

// throttle is the ThrottleInterval of a task with a restart policy, in
// seconds: launchd's default, 10, is long for a dev server that crashed.
const throttle = 1

// keepAlive is the plist's KeepAlive for policy p: launchd spawns the job
// again after a non-zero exit or a signal ({SuccessfulExit: false}) for
// on-failure; for always, while the task's keep file exists (PathState),
// which the launcher removes when it gives up (see restartFiles). KeepAlive
// true could not be given up on.
func keepAlive(p core.RestartPolicy, report string) any {
	switch p.Mode {
	case core.RestartOnFailure:
		return map[string]any{"SuccessfulExit": false}
	case core.RestartAlways:
		return map[string]any{"PathState": map[string]any{restartFilesOf(report).keep: true}}
	}
	return false
}

// plistPath is where the plist of the task with the given hash lives.
func (b *Backend) plistPath(hash string) string {
	return filepath.Join(b.Dirs.Data, "launchd", hash+".plist")
}

// writePlist writes a as XML, mode 0600, and returns its path.
func (b *Backend) writePlist(a agent) (string, error) {
	hash := strings.TrimPrefix(a.Label, LabelPrefix)
	path := b.plistPath(hash)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("launchd: %w", err)
	}
	data, err := plist.MarshalIndent(a, plist.XMLFormat, "\t")
	if err != nil {
		return "", fmt.Errorf("launchd: encode plist: %w", err)
	}
	if err := regular.WriteFileAtomic(path, data, 0o600); err != nil {
		return "", fmt.Errorf("launchd: %w", err)
	}
	return path, nil
}

// maxFile bounds how much of a file of its own in btl's data directory
// the backend reads: a plist carries the task's argv and environment.
const maxFile = 64 << 20

// readPlist reads back the plist of the task with the given hash and
// returns it with its modification time (when the task was started).
func (b *Backend) readPlist(hash string) (agent, time.Time, error) {
	var a agent
	path := b.plistPath(hash)
	data, err := regular.ReadFile(path, maxFile)
	if err != nil {
		return a, time.Time{}, fmt.Errorf("launchd: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return a, time.Time{}, fmt.Errorf("launchd: %w", err)
	}
	if _, err := plist.Unmarshal(data, &a); err != nil {
		return a, time.Time{}, fmt.Errorf("launchd: %s: %w", path, err)
	}
	if len(a.ProgramArguments) == 0 {
		return a, time.Time{}, fmt.Errorf("launchd: %s: no ProgramArguments", path)
	}
	return a, fi.ModTime(), nil
}

// task rebuilds what btl recorded for the agent's task. The plist holds
// the resolved command path, not argv[0] as typed: when the command's
// base name gives back the task's hash, that is what the user typed.
func (a agent) task(hash string) core.Task {
	argv := a.ProgramArguments
	if short := append([]string{filepath.Base(argv[0])}, argv[1:]...); core.Hash(a.WorkingDirectory, core.CommandLine(short)) == hash {
		argv = short
	}
	return core.Task{
		Hash:      hash,
		Argv:      argv,
		Command:   core.CommandLine(argv),
		Cwd:       a.WorkingDirectory,
		LogFile:   a.StandardOutPath,
		Token:     a.EnvironmentVariables[core.EnvInstance],
		Restart:   a.EnvironmentVariables[RestartEnv],
		Unit:      a.Label,
		Backend:   Name,
		LogDirect: true,
	}
}
