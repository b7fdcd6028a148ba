package main

import (
	"bytes"
	"io"

	"btl/internal/logread"
)

// stampWidth is the width of a line's time as --timestamps prints it.
const stampWidth = len("2006-01-02T15:04:05Z")

// stampWriter writes the log's lines to w, each after the time it was
// written (--timestamps). It holds a line back until its end is written.
type stampWriter struct {
	w       io.Writer
	clock   *logread.Clock
	off     int64 // offset in the log of the first byte of partial
	partial []byte
}

func (s *stampWriter) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := s.line(s.partial[:i+1]); err != nil {
			return 0, err
		}
		s.off += int64(i + 1)
		s.partial = s.partial[i+1:]
	}
}

func (s *stampWriter) line(l []byte) error {
	prefix := "-" + string(bytes.Repeat([]byte(" "), stampWidth-1))
	if at, ok := s.clock.At(s.off, l); ok {
		prefix = at.UTC().Format("2006-01-02T15:04:05Z")
	}
	_, err := io.WriteString(s.w, prefix+" "+string(l))
	return err
}

// flush writes a last line that has no end yet.
func (s *stampWriter) flush() error {
	if len(s.partial) == 0 {
		return nil
	}
	err := s.line(append(s.partial, '\n'))
	s.off += int64(len(s.partial))
	s.partial = nil
	return err
}

// reset starts again at offset 0 of a rotated or truncated log.
func (s *stampWriter) reset() {
	_ = s.flush()
	s.off = 0
	s.clock.Reset()
}
