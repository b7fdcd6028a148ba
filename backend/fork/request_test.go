package fork

import (
	"errors"
	"reflect"
	"strconv"
	"testing"

	"btl/core"
)

// fill sets every field of v, recursively, to a value that differs from
// its zero value, so that a field added to core.Spec and not to the
// request's encoding makes the round trip below fail.
func fill(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	*seed++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s\xff" + strconv.Itoa(*seed) + "é")
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(-*seed * 1000))
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			t.Fatalf("no filler for %s", v.Type())
		}
		v.Set(reflect.ValueOf([]string{"a=\x00b" + strconv.Itoa(*seed), "", "c"}))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), seed)
		}
	case reflect.Pointer:
		if v.Type() != reflect.TypeFor[*core.Watch]() {
			t.Fatalf("no filler for %s", v.Type())
		}
		// The watcher's, not the supervisor's: it does not travel.
	default:
		t.Fatalf("no filler for %s", v.Type())
	}
}

func TestRequestRoundTrip(t *testing.T) {
	var full request
	seed := 0
	fill(t, reflect.ValueOf(&full).Elem(), &seed)
	for _, tc := range []struct {
		name string
		req  request
	}{
		{"every field set", full},
		{"empty", request{}},
		{"restart policy", request{Spec: core.Spec{Argv: []string{"sleep", "1"}, Restart: core.RestartPolicy{Mode: core.RestartOnFailure, Max: 3}}, LogMax: 1 << 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRequest(encodeRequest(tc.req))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.req) {
				t.Errorf("decoded %#v\nwant %#v", got, tc.req)
			}
		})
	}
}

func TestRequestBad(t *testing.T) {
	var full request
	seed := 0
	fill(t, reflect.ValueOf(&full).Elem(), &seed)
	enc := encodeRequest(full)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"nothing", nil},
		{"other magic", append([]byte("btlreq1\n"), enc[len(requestMagic):]...)},
		{"trailing bytes", append(append([]byte{}, enc...), 0)},
		{"huge list", append([]byte(requestMagic), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeRequest(tc.data); !errors.Is(err, errBadRequest) {
				t.Errorf("error %v, want one wrapping errBadRequest", err)
			}
		})
	}
	for n := len(requestMagic); n < len(enc); n++ {
		if _, err := decodeRequest(enc[:n]); !errors.Is(err, errBadRequest) {
			t.Fatalf("cut at %d of %d bytes: error %v, want one wrapping errBadRequest", n, len(enc), err)
		}
	}
}
