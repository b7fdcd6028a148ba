package systemd

// SetJournalArgs makes b run journalctl with args added, such as
// "-D", dir to read another journal directory, and probes it anew.
func SetJournalArgs(b *Backend, args ...string) {
	b.journalArgs = args
	b.probed = false
}

// UnitReads is how many times b has read a single unit's properties.
func UnitReads(b *Backend) int { return b.unitReads }

// SetExe makes b re-execute exe as its helpers (the log agent).
func SetExe(b *Backend, exe string) { b.exe = exe }

// AgentDrain is how long the log agent stays once no task runs.
const AgentDrain = agentDrain
