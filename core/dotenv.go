package core

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"btl/internal/regular"
)

// ErrBadEnvFile is wrapped by ReadEnvFile's errors about a file's content.
var ErrBadEnvFile = errors.New("bad env file")

// maxEnvFile bounds how much of an --env-file btl reads.
const maxEnvFile = 1 << 20

// ReadEnvFile reads a .env file: one NAME=value a line, blank lines and
// lines starting with # ignored, an optional "export " before the name.
// A value in single quotes is taken as it is; one in double quotes may
// hold \n, \t, \" and \\; an unquoted one is trimmed, and a " #" in it
// starts a comment. It returns the entries in file order.
func ReadEnvFile(path string) ([]string, error) {
	b, err := regular.ReadFile(path, maxEnvFile)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxEnvFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || !validEnvName(name) {
			return nil, fmt.Errorf("%w: %s:%d: want NAME=value", ErrBadEnvFile, path, n)
		}
		v, err := envValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrBadEnvFile, path, n, err)
		}
		out = append(out, name+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return out, nil
}

// ApplyEnvFiles reads each file in turn and sets its entries in env: a
// file's value wins over the environment's, a later file's over an
// earlier one's.
func ApplyEnvFiles(env []string, files []string) ([]string, error) {
	for _, f := range files {
		kvs, err := ReadEnvFile(f)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			env = Setenv(env, k, v)
		}
	}
	return env, nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// envValue unquotes a value of a .env line.
func envValue(v string) (string, error) {
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
