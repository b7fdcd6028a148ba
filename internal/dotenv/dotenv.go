// Package dotenv reads .env files the way foreman, overmind,
// process-compose and docker compose do: one NAME=value a line, an
// optional "export " before the name, blank lines and lines starting with
// # skipped. A value in single quotes is taken as it is; one in double
// quotes may hold \n, \t, \" and \\; an unquoted one ends at " #" and is
// trimmed. Variables are not expanded.
package dotenv

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a line of a .env file that cannot be read.
type Error struct {
	Line int    // 1-based
	Msg  string // what is wrong with it
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads data as a .env file and returns its entries, NAME=value,
// in file order. A line it cannot read is an *Error.
func Parse(data []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(strings.TrimRight(line, "\r"))
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, value, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || !ValidName(name) {
			return nil, &Error{Line: i + 1, Msg: fmt.Sprintf("%q is not NAME=value", t)}
		}
		v, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return nil, &Error{Line: i + 1, Msg: err.Error()}
		}
		out = append(out, name+"="+v)
	}
	return out, nil
}

// ValidName reports whether s is a shell variable name: letters, digits
// and _, not starting with a digit.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// unquote reads the value of a line.
func unquote(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "'"):
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single quote")
		}
		return v[1 : 1+end], nil
	case strings.HasPrefix(v, `"`):
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '"':
				return b.String(), nil
			case c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(v[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double quote")
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v), nil
}
