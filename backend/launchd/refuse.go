package launchd

import (
	"cmp"
	"errors"
	"fmt"
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

var _ core.Refuser = (*Backend)(nil)

// Refuse returns why launchd cannot run spec, without asking it: a
// *core.Refusal when spec's directory, program or log is in a folder macOS
// protects (see Protected); nil when it can try.
func (b *Backend) Refuse(spec core.Spec) error {
	if d := Protected(spec); d != "" {
		return &core.Refusal{
			Reason: d + " is protected",
			Err:    fmt.Errorf("launchd: %s is in %s: %w; use --backend fork", cmp.Or(spec.Dir, spec.Path), d, ErrProtected),
		}
	}
	return nil
}

// refusal makes err, a start's error, a *core.Refusal when launchd
// refused the task for good (ErrRefused, ErrSpawn): another backend may
// still run it.
func refusal(err error) error {
	var r *core.Refusal
	if err == nil || errors.As(err, &r) || !errors.Is(err, ErrRefused) && !errors.Is(err, ErrSpawn) {
		return err
	}
	return &core.Refusal{Reason: strings.TrimPrefix(err.Error(), "launchd: "), Err: err}
}
