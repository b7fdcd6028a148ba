package fork

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"btl/core"
)

// requestMagic opens every encoded request: a supervisor from another
// version of btl refuses a request it would misread.
const requestMagic = "btlreq3\n"

// errBadRequest is wrapped by decodeRequest's errors.
var errBadRequest = errors.New("bad supervisor request")

// encodeRequest encodes r for the supervisor: every string and list
// length-prefixed (uvarint), in a fixed order. The Spec's Watch is the
// watcher's, not the supervisor's: it does not travel. Strings are bytes, so
// arguments and variables that are not UTF-8 pass unchanged. Decoding it
// costs a few slices and no reflection, unlike gob, whose package set-up
// alone ran in every btl process.
func encodeRequest(r request) []byte {
	s := r.Spec
	b := make([]byte, 0, 256+len(s.Command)+16*len(s.Env))
	b = append(b, requestMagic...)
	for _, v := range []string{s.Hash, s.Command, s.Path, s.Dir, s.LogFile, s.Token, s.Name, s.Backend, string(s.Restart.Mode), s.Project, s.Entry, s.Def, r.ExitDir} {
		b = appendString(b, v)
	}
	for _, v := range []int64{int64(s.Restart.Max), r.LogMax, int64(s.Stop.Signal), int64(s.Stop.Timeout)} {
		b = binary.AppendVarint(b, v)
	}
	for _, list := range [][]string{s.Argv, s.Env, s.EnvFiles} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, v := range list {
			b = appendString(b, v)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRequest decodes what encodeRequest encoded.
func decodeRequest(b []byte) (request, error) {
	var r request
	if len(b) < len(requestMagic) || string(b[:len(requestMagic)]) != requestMagic {
		return r, fmt.Errorf("%w: not a request of this btl version", errBadRequest)
	}
	d := decoder{b: b[len(requestMagic):]}
	s := &r.Spec
	var mode string
	for _, p := range []*string{&s.Hash, &s.Command, &s.Path, &s.Dir, &s.LogFile, &s.Token, &s.Name, &s.Backend, &mode, &s.Project, &s.Entry, &s.Def, &r.ExitDir} {
		*p = d.string()
	}
	s.Restart.Mode = core.RestartMode(mode)
	s.Restart.Max = int(d.varint())
	r.LogMax = d.varint()
	s.Stop.Signal = syscall.Signal(d.varint())
	s.Stop.Timeout = time.Duration(d.varint())
	s.Argv = d.strings()
	s.Env = d.strings()
	s.EnvFiles = d.strings()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the end", errBadRequest, len(d.b))
	}
	return r, d.err
}

// decoder reads a request's fields; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated", errBadRequest)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each string takes at least one byte
		d.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	list := make([]string, n)
	for i := range list {
		list[i] = d.string()
	}
	return list
}
