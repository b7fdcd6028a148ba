package main

import (
	"testing"
	"time"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"npm run dev", "npm run dev"},
		{"sh -c 'a\nb'", `sh -c 'a\nb'`},
		{"tab\there", `tab\there`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"bad \xff byte", `bad \xff byte`},
		{"café ☕", "café ☕"},
	} {
		if got := printable(c.in); got != c.want {
			t.Errorf("printable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s ago"}, {59 * time.Second, "59s ago"}, {2 * time.Minute, "2m ago"},
		{3 * time.Hour, "3h ago"}, {49 * time.Hour, "2d ago"}, {-time.Second, "0s ago"},
	} {
		if got := ago(now, now.Add(-c.d)); got != c.want {
			t.Errorf("ago(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := ago(now, time.Time{}); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
}
