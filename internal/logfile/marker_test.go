package logfile

import (
	"testing"
	"time"
)

func TestMarker(t *testing.T) {
	at := time.Date(2026, 11, 26, 1, 31, 28, 0, time.UTC)
	line := Marker{At: at, PID: 1234, Command: "npm run dev"}.Line()
	if line != "[btl] 2026-11-26T01:31:28Z started PID 1234: npm run dev\n" {
		t.Fatalf("Line: %q", line)
	}
	for _, c := range []struct {
		name, line string
		want       Marker
		ok         bool
	}{
		{"a marker", line, Marker{at, 1234, "npm run dev"}, true},
		{"without its newline", line[:len(line)-1], Marker{at, 1234, "npm run dev"}, true},
		{"an empty command", "[btl] 2026-11-26T01:31:28Z started PID 7: ", Marker{at, 7, ""}, true},
		{"a command with a colon", "[btl] 2026-11-26T01:31:28Z started PID 7: sh -c a: b", Marker{at, 7, "sh -c a: b"}, true},
		{"cut after the colon", "[btl] 2026-11-26T01:31:28Z started PID 7:", Marker{at, 7, ""}, true},
		{"an empty line", "", Marker{}, false},
		{"output", "listening on :8080", Marker{}, false},
		{"another line of btl", "[btl] 2026-11-26T01:31:28Z could not restart: no such file", Marker{}, false},
		{"btl's end line", "[btl] exited 3", Marker{}, false},
		{"no time", "[btl] started PID 7: x", Marker{}, false},
		{"a bad time", "[btl] yesterday started PID 7: x", Marker{}, false},
		{"no PID", "[btl] 2026-11-26T01:31:28Z started PID : x", Marker{}, false},
		{"a PID that is not a number", "[btl] 2026-11-26T01:31:28Z started PID 7x: x", Marker{}, false},
		{"no colon", "[btl] 2026-11-26T01:31:28Z started PID 7", Marker{}, false},
		{"not at the line's start", "> [btl] 2026-11-26T01:31:28Z started PID 7: x", Marker{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ParseMarker(c.line)
			if ok != c.ok || !got.At.Equal(c.want.At) || got.PID != c.want.PID || got.Command != c.want.Command {
				t.Errorf("ParseMarker(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestLogOf(t *testing.T) {
	for _, name := range []string{"a.log", Rotated("a.log"), TimesPath("a.log"), TimesPath(Rotated("a.log"))} {
		if got := LogOf(name); got != "a.log" {
			t.Errorf("LogOf(%q) = %q", name, got)
		}
	}
}
