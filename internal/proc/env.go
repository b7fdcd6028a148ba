package proc

import "fmt"

// Env names btl sets in every task's environment. EnvInstance carries a
// token unique to one start; the scanner uses it to find the task's
// descendants, even those that left its process group.
const (
	EnvHash     = "BTL_HASH"
	EnvInstance = "BTL_INSTANCE"
)

// SurvivorsError reports processes that were still alive after SIGKILL,
// typically stuck in uninterruptible sleep.
type SurvivorsError struct {
	PIDs []int
}

func (e *SurvivorsError) Error() string {
	return fmt.Sprintf("processes survived SIGKILL: %v", e.PIDs)
}
