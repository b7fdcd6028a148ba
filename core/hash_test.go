package core

import (
	"strings"
	"testing"
)

func TestHashVectors(t *testing.T) {
	for _, c := range []struct {
		cwd  string
		argv []string
		cmd  string
		hash string
	}{
		{"/Users/luke/project", []string{"pnpm", "run", "dev"}, "pnpm run dev", "93b81d56fc21a59e"},
		{"/home/u/app", []string{"sh", "-c", "sleep 3"}, "sh -c 'sleep 3'", "110c57c38c9e71fb"},
	} {
		cmd := CommandLine(c.argv)
		if cmd != c.cmd {
			t.Errorf("CommandLine(%q) = %q, want %q", c.argv, cmd, c.cmd)
		}
		if h := Hash(c.cwd, cmd); h != c.hash {
			t.Errorf("Hash(%q, %q) = %s, want %s", c.cwd, cmd, h, c.hash)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "''"},
		{"plain", "plain"},
		{"A-Z_a.z/0:9,@%+=", "A-Z_a.z/0:9,@%+="},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$HOME", "'$HOME'"},
		{"line\nbreak", "'line\nbreak'"},
		{"\xff", "'\xff'"},
		{"é", "'é'"},
	} {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if CommandLine([]string{"echo", "a b"}) == CommandLine([]string{"echo", "a", "b"}) {
		t.Error(`echo "a b" and echo a b render the same`)
	}
}

// unquote reverses CommandLine the way a POSIX shell splits words made of
// bare and single-quoted parts.
func unquote(s string) ([]string, bool) {
	var out []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\'':
			inQuote = false
		case inQuote:
			cur.WriteByte(c)
		case c == '\'':
			inQuote, inWord = true, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		return nil, false
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, true
}

func FuzzCommandLine(f *testing.F) {
	f.Add("a b", "it's", "")
	f.Add("--x=1", "\n", "'")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		argv := []string{a, b, c}
		line := CommandLine(argv)
		got, ok := unquote(line)
		if !ok || len(got) != len(argv) {
			t.Fatalf("CommandLine(%q) = %q splits into %q", argv, line, got)
		}
		for i := range argv {
			if got[i] != argv[i] {
				t.Fatalf("CommandLine(%q) = %q splits into %q", argv, line, got)
			}
		}
		if h := Hash("/d", line); !ValidHash(h) {
			t.Fatalf("Hash gave %q", h)
		}
	})
}
