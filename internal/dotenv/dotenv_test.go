package dotenv

import (
	"errors"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		line int // of the error, 0 for none
	}{
		{"A=1\nB = two \n", []string{"A=1", "B=two"}, 0},
		{"# c\n\nexport C=3\r\n", []string{"C=3"}, 0},
		{`S='a # b \n'`, []string{`S=a # b \n`}, 0},
		{`D="x\ty\n\"q\"\\" # note`, []string{"D=x\ty\n\"q\"\\"}, 0},
		{"U=plain # comment", []string{"U=plain"}, 0},
		{"U=a#b", []string{"U=a#b"}, 0},
		{"E=", []string{"E="}, 0},
		{"A=1\nnot a line\n", nil, 2},
		{"1A=x", nil, 1},
		{"Q='open", nil, 1},
		{`Q="open`, nil, 1},
	} {
		got, err := Parse([]byte(tc.in))
		var le *Error
		switch {
		case tc.line == 0 && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.line != 0 && (!errors.As(err, &le) || le.Line != tc.line):
			t.Errorf("Parse(%q) = %q, %v; want an error on line %d", tc.in, got, err, tc.line)
		}
	}
}
