//go:build !linux

package main

// maybeFakeLaunchctl does nothing: the fake launchctl runs on Linux only.
func maybeFakeLaunchctl() {}
