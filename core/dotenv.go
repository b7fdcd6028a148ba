package core

import (
	"errors"
	"fmt"
	"strings"

	"btl/internal/dotenv"
	"btl/internal/regular"
)

// ErrBadEnvFile is wrapped by ReadEnvFile's errors about a file's content.
var ErrBadEnvFile = errors.New("bad env file")

// maxEnvFile bounds how much of an --env-file btl reads.
const maxEnvFile = 1 << 20

// ReadEnvFile reads a .env file (see internal/dotenv) and returns its
// entries in file order.
func ReadEnvFile(path string) ([]string, error) {
	b, err := regular.ReadFile(path, maxEnvFile)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	kvs, err := dotenv.Parse(b)
	var le *dotenv.Error
	if errors.As(err, &le) {
		return nil, fmt.Errorf("%w: %s:%d: %s", ErrBadEnvFile, path, le.Line, le.Msg)
	}
	return kvs, err
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
