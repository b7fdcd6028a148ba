package environ

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// read returns the environment pid started with, one entry each, read
// from kern.procargs2: argc, the executable path, argv, then the
// environment, all NUL-terminated.
func read(pid int) [][]byte {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil || len(b) < 4 {
		return nil
	}
	argc := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	// Executable path, then NUL padding.
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil
	}
	b = b[i:]
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	var env [][]byte
	for f := range bytes.SplitSeq(b, []byte{0}) {
		if argc > 0 {
			argc--
			continue
		}
		if len(f) == 0 {
			break
		}
		env = append(env, f)
	}
	return env
}
