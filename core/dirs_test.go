package core

import "testing"

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
