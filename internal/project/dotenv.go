package project

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// LoadDotEnv reads dir/.env (see ParseDotEnv); no file is no variables.
func LoadDotEnv(dir string) ([]string, error) {
	path := filepath.Join(dir, ".env")
	b, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseDotEnv(path, b)
}

// ParseDotEnv reads a .env file as foreman, overmind and process-compose
// do: NAME=value lines, an optional "export " before the name, blank lines
// and # comments skipped; a value in single quotes is taken as it is, one
// in double quotes has \n, \t, \" and \\ escapes, an unquoted one ends at
// " #" and is trimmed. Variables are not expanded.
func ParseDotEnv(path string, data []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(strings.TrimRight(line, "\r"))
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, val, ok := strings.Cut(t, "=")
		name = strings.TrimSpace(name)
		if !ok || !validEnvName(name) {
			return nil, &Error{Path: path, Line: i + 1, Msg: fmt.Sprintf("%q is not NAME=value", t)}
		}
		val = strings.TrimSpace(val)
		switch {
		case len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'':
			val = val[1 : len(val)-1]
		case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
			val = strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\"`, `"`, `\\`, `\`).Replace(val[1 : len(val)-1])
		default:
			if j := strings.Index(val, " #"); j >= 0 {
				val = strings.TrimSpace(val[:j])
			}
		}
		out = append(out, name+"="+val)
	}
	return out, nil
}
