package environ

import (
	"strings"
	"testing"
)

func TestStatInExec(t *testing.T) {
	// Fields 3..52 of a stat line, with env_end (field 51) set to end.
	stat := func(state, end string) string {
		f := strings.Fields("S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
		f[0], f[48] = state, end
		return "7 (a) b) " + strings.Join(f, " ") + "\n"
	}
	for _, c := range []struct {
		stat string
		want bool
	}{
		{stat("R", "0"), true},                    // no environment in its memory yet
		{stat("S", "140735799136237"), false},     // an environment, even an empty one
		{stat("Z", "0"), false},                   // a zombie has no memory at all
		{"7 (a) R 1 7 7 0 -1 0 0 0 0 0\n", false}, // too old a kernel to tell
	} {
		if got := statInExec([]byte(c.stat)); got != c.want {
			t.Errorf("statInExec(%q) = %v, want %v", c.stat, got, c.want)
		}
	}
}
