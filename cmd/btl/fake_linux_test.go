package main

import (
	"os"

	"btl/internal/fakelaunchctl/fake"
)

// maybeFakeLaunchctl makes the test binary act as the fake launchctl
// (see fakeLaunchctl).
func maybeFakeLaunchctl() {
	if os.Getenv("FAKE_LAUNCHCTL_AS_MAIN") == "1" {
		os.Exit(fake.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
}
