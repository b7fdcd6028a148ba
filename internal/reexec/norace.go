//go:build !race

package reexec

// ChildEnv is added to the environment of every helper btl starts. Outside
// race-enabled builds it is empty.
var ChildEnv []string
