package launchd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"btl/core"
)

// ErrRefused is wrapped by the errors of starts that launchd refused for
// good: no domain took the agent, or it could not spawn it. Another
// backend may still run the task.
var ErrRefused = errors.New("launchd refused the task")

// ErrProtected is wrapped by the error of a start whose directory or
// program is in a folder macOS protects (see Protected).
var ErrProtected = errors.New("jobs launchd starts may not read it (macOS privacy protection, TCC)")

// protectedDirs are the folders, relative to the home directory, whose
// access Terminal was granted and jobs launchd starts do not inherit:
// Documents, Desktop, Downloads, iCloud Drive (Library/Mobile Documents)
// and the file providers' folders (Library/CloudStorage: Dropbox, Google
// Drive, OneDrive).
var protectedDirs = []string{"Documents", "Desktop", "Downloads", "Library/Mobile Documents", "Library/CloudStorage"}

// volumes holds the external and network volumes, which macOS protects
// the same way: a job launchd starts gets EPERM there, and EX_CONFIG when
// its log file is there.
const volumes = "/Volumes"

// Protected returns the folder macOS protects (as ~/Documents, or
// /Volumes) that the task of spec would run in or from, or log to, or ""
// when there is none.
func Protected(spec core.Spec) string {
	home := ""
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	for _, p := range []string{spec.Dir, spec.Path, spec.LogFile} {
		if p == "" {
			continue
		}
		paths := []string{p}
		if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
			paths = append(paths, r)
		}
		for _, path := range paths {
			// APFS is case-insensitive unless formatted otherwise.
			if l := strings.ToLower(path); strings.HasPrefix(l, strings.ToLower(volumes)+"/") {
				return volumes
			}
			if home == "" {
				continue
			}
			for _, d := range protectedDirs {
				// APFS is case-insensitive unless formatted otherwise.
				dir := strings.ToLower(filepath.Join(home, d))
				if l := strings.ToLower(path); l == dir || strings.HasPrefix(l, dir+"/") {
					return "~/" + d
				}
			}
		}
	}
	return ""
}

// refuse returns why launchd cannot run spec, without asking it; nil when
// it can try.
func refuse(spec core.Spec) error {
	if d := Protected(spec); d != "" {
		return fmt.Errorf("launchd: %s is in %s: %w; use --backend fork", cmp.Or(spec.Dir, spec.Path), d, ErrProtected)
	}
	return nil
}

// Fallback is the launchd backend of auto mode: a task launchd cannot run
// (its folder is protected, or launchd refuses it for good) starts with
// Other instead, once with a note on Warn. The task then records Other's
// name, and its Unit says why, for `btl list -o wide`.
type Fallback struct {
	*Backend
	// Other runs what launchd cannot; the fork backend.
	Other core.Backend
	// Warn receives the one-line note; nil means os.Stderr.
	Warn io.Writer
}

// Start starts spec with launchd, or with Other when launchd cannot run it.
func (f *Fallback) Start(ctx context.Context, spec core.Spec) (core.Started, error) {
	err := refuse(spec)
	if err == nil {
		var t core.Started
		t, err = f.Backend.Start(ctx, spec)
		if err == nil || !errors.Is(err, ErrRefused) && !errors.Is(err, ErrSpawn) {
			return t, err
		}
	}
	why := strings.TrimPrefix(err.Error(), "launchd: ")
	if d := Protected(spec); d != "" {
		why = d + " is protected"
	}
	t, ferr := f.Other.Start(ctx, spec)
	if ferr != nil {
		return t, fmt.Errorf("%w (after launchd: %v)", ferr, err)
	}
	t.Unit = "(not launchd: " + why + ")"
	fmt.Fprintf(cmp.Or[io.Writer](f.Warn, os.Stderr), "btl: launchd cannot run this task (%s); started it with the %s backend\n", why, f.Other.Name())
	return t, nil
}
