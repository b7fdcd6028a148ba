package project

import (
	"errors"
	"io/fs"
	"path/filepath"

	"btl/internal/dotenv"
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

// ParseDotEnv reads a .env file (see internal/dotenv) whose path is path
// and contents data.
func ParseDotEnv(path string, data []byte) ([]string, error) {
	kvs, err := dotenv.Parse(data)
	var le *dotenv.Error
	if errors.As(err, &le) {
		return nil, &Error{Path: path, Line: le.Line, Msg: le.Msg}
	}
	return kvs, err
}
