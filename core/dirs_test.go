package core

import (
	"testing"

	"btl/internal/logfile"
)

func TestRunFileOwner(t *testing.T) {
	const h = "0123456789abcdef"
	for _, tc := range []struct {
		name   string
		hash   string
		marked bool
	}{
		{h + ".env", h, false},
		{h + ".cursor", h, false},
		{h + ".log.lock", h, false},
		{h + "-00112233aabbccdd.exit", h, false},
		{h + "-00112233aabbccdd.launchd", h, false},
		{"gui_501_btl." + h + ".bootout", h, true},
		{"user_501_btl." + h + ".bootout", h, true},
		{"agent.lock", "", false},
		{"journal-readable-0a1b2c3d4e5f", "", false},
		{h, "", false},
		{"0123456789ABCDEF.env", "", false},
		{h + "x.env", "", false},
		{"btl.nothex.bootout", "", false},
	} {
		if hash, marked := runFileOwner(tc.name); hash != tc.hash || marked != tc.marked {
			t.Errorf("runFileOwner(%q) = %q, %v; want %q, %v", tc.name, hash, marked, tc.hash, tc.marked)
		}
	}
}

func TestLogHash(t *testing.T) {
	const h = "0123456789abcdef"
	for _, tc := range []struct {
		name string
		hash string // of LogHash(logfile.LogOf(name)): the task a file under logs/ belongs to
		log  bool   // LogHash(name): the name of a task's log itself
	}{
		{h + ".log", h, true},
		{h + ".log.1", h, false},
		{h + ".log.times", h, false},
		{h + ".log.1.times", h, false},
		{h + ".log.2", "", false},
		{h + ".txt", "", false},
		{"0123456789ABCDEF.log", "", false},
		{"notes.log", "", false},
	} {
		got, ok := LogHash(logfile.LogOf(tc.name))
		if !ok {
			got = ""
		}
		_, log := LogHash(tc.name)
		if got != tc.hash || log != tc.log {
			t.Errorf("%s: owner %q, log %v; want %q, %v", tc.name, got, log, tc.hash, tc.log)
		}
	}
}
