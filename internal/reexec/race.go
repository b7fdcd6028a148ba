//go:build race

package reexec

// ChildEnv is added to the environment of every helper btl starts. A
// race-enabled build (only ever a test or a developer's build) otherwise
// sleeps a second at exit, once per helper.
var ChildEnv = []string{"GORACE=atexit_sleep_ms=0"}
