package logfile

import "strings"

// getenv returns the value of name in env, the last one when repeated
// (as core.Getenv).
func getenv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}
