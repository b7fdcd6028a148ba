// Package layers holds the test of btl's import rule: the import graph
// reads top-down. cmd/btl imports core, and a backend only in
// cmd/btl/backends.go (the wiring); backends import core and internal
// packages, never cmd or one another; core imports no backend and, of
// btl's own packages, only internal/proc, internal/logfile and
// internal/regular; internal/logfile imports only internal/regular,
// internal/logread only internal/logfile and internal/regular,
// internal/proc only its own internal/proc/internal/environ (which
// internal/proc/proctest, the tests' view of the process table, reads
// too), and the other internal packages nothing of btl.
package layers
