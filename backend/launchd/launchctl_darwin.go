package launchd

// defaultLaunchctl is launchctl by absolute path: a launchctl earlier in
// PATH (a wrapper, another package manager's) must not stand in for it.
const defaultLaunchctl = "/bin/launchctl"
