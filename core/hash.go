package core

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// HashLen is the number of hex characters in a task hash.
const HashLen = 16

// Quote renders one argument for a POSIX shell, as Python's shlex.quote
// does: an argument made only of [A-Za-z0-9_@%+=:,./-] is left alone, an
// empty one becomes a pair of single quotes, and any other is wrapped in
// single quotes with each single quote inside written as quote, backslash,
// quote, quote:
//
//	Quote("a b")  == `'a b'`
//	Quote("it's") == `'it'\''s'`
func Quote(arg string) string {
	if arg == "" {
		return "''"
	}
	if isSafe(arg) {
		return arg
	}
	return "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
}

func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_@%+=:,./-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// CommandLine renders argv as one shell-quoted string. It is what btl shows
// and stores as a task's command, and half of the task's identity.
func CommandLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Hash returns a task's identity: the first 16 hex characters of
// SHA-256(cwd + "::" + command).
func Hash(cwd, command string) string {
	sum := sha256.Sum256([]byte(cwd + "::" + command))
	return hex.EncodeToString(sum[:])[:HashLen]
}

// DerivedHash returns the n-th alternative hash (n >= 1) of a task whose
// Hash is already taken by a different task (SHA-256(cwd + "::" + command)
// is ambiguous: cwd /a with "b::c" and cwd /a::b with "c" give the same
// input): the first 16 hex characters of SHA-256(cwd + NUL + command + NUL
// + n), n in decimal. NUL appears in no path or argument, so this input is
// unambiguous.
func DerivedHash(cwd, command string, n int) string {
	sum := sha256.Sum256([]byte(cwd + "\x00" + command + "\x00" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:])[:HashLen]
}

// IsText reports whether every string is valid UTF-8. D-Bus (systemd) and
// property lists (launchd) carry nothing else; the fork backend runs any
// bytes.
func IsText(s ...string) bool {
	for _, x := range s {
		if !utf8.ValidString(x) {
			return false
		}
	}
	return true
}

// SpecIsText reports whether spec's program, directory and arguments are
// valid UTF-8.
func SpecIsText(spec Spec) bool {
	return IsText(spec.Path, spec.Dir, spec.Command) && IsText(spec.Argv...)
}
