package launchd

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
)

// resourceLimits is the part of a plist's SoftResourceLimits or
// HardResourceLimits btl sets.
type resourceLimits struct {
	NumberOfFiles uint64 `plist:"NumberOfFiles"`
}

// callerLimits is what a command started from the caller's shell gets and
// a launchd job does not: the open-files limits and the umask. launchd
// starts jobs with a soft RLIMIT_NOFILE of 256 and its own umask.
type callerLimits struct {
	softFiles, hardFiles uint64 // 0: unknown or unlimited
	umask                int    // -1: unknown
}

// probeLimits asks a child shell for the caller's limits and umask. The Go
// runtime raises its own soft RLIMIT_NOFILE at start and restores it only
// in child processes, so only a child can tell what the caller's shell
// had. A probe that fails leaves launchd's defaults in place.
func probeLimits(ctx context.Context) callerLimits {
	l := callerLimits{umask: -1}
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", "ulimit -Sn; ulimit -Hn; umask").Output()
	if err != nil {
		return l
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return l
	}
	l.softFiles, _ = strconv.ParseUint(f[0], 10, 64) // "unlimited" stays 0
	l.hardFiles, _ = strconv.ParseUint(f[1], 10, 64)
	if m, err := strconv.ParseUint(f[2], 8, 32); err == nil && m <= 0o777 {
		l.umask = int(m)
	}
	return l
}
