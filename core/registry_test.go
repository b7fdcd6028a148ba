package core

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestRegistryChoose(t *testing.T) {
	// entry is a backend of the table: detected here or not, opening or not.
	entry := func(name string, detected bool, openErr error) Registered {
		return Registered{
			Name:   name,
			Detect: func() bool { return detected },
			Open: func() (Backend, error) {
				if openErr != nil {
					return nil, openErr
				}
				return newMem(name), nil
			},
		}
	}
	noBus := errors.New("no user bus")
	for _, c := range []struct {
		name         string
		reg          Registry
		ask          string
		want, wantFB string // backend and fallback chosen, "" for none
		wantErr      string
		wantDetected []string
	}{
		{"auto: the first detected", Registry{entry("s", true, nil), entry("l", false, nil), entry("f", true, nil)}, "", "s", "f", "", []string{"s", "f"}},
		{"auto: one that does not open is passed over", Registry{entry("s", true, noBus), entry("l", true, nil), entry("f", true, nil)}, "auto", "l", "f", "", []string{"s", "l", "f"}},
		{"auto: the last, detected or not, has no fallback", Registry{entry("s", false, nil), entry("l", false, nil), entry("f", false, nil)}, "auto", "f", "", "", []string{"f"}},
		{"named: no fallback", Registry{entry("s", true, nil), entry("f", true, nil)}, "s", "s", "", "", []string{"s", "f"}},
		{"named, not detected: opened all the same", Registry{entry("l", false, nil), entry("f", true, nil)}, "l", "l", "", "", []string{"f"}},
		{"named, cannot open", Registry{entry("s", true, noBus), entry("f", true, nil)}, "s", "", "", "backend s: no user bus", []string{"s", "f"}},
		{"unknown", Registry{entry("s", true, nil), entry("l", false, nil), entry("f", true, nil)}, "bogus", "", "", `unknown backend "bogus" (want auto, s, l or f)`, []string{"s", "f"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, fb, err := c.reg.Choose(c.ask)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("Choose(%q) = %v, want %q", c.ask, err, c.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Choose(%q): %v", c.ask, err)
			} else if b.Name() != c.want || name(fb) != c.wantFB {
				t.Errorf("Choose(%q) = %s, fallback %q; want %s, %q", c.ask, b.Name(), name(fb), c.want, c.wantFB)
			}
			if got := c.reg.Detected(); !slices.Equal(got, c.wantDetected) {
				t.Errorf("Detected() = %v, want %v", got, c.wantDetected)
			}
			if got := c.reg.Unnamed(); got != c.reg[len(c.reg)-1].Name {
				t.Errorf("Unnamed() = %q, want the last entry", got)
			}
		})
	}
	if _, err := (Registry{entry("f", true, nil)}).Open("x"); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("Open of an unknown name = %v, want ErrUnknownBackend", err)
	}
}

func name(b Backend) string {
	if b == nil {
		return ""
	}
	return b.Name()
}

// bytesMem is a memBackend that runs bytes that are not UTF-8, as fork.
type bytesMem struct{ *memBackend }

func (bytesMem) CarriesBytes() {}

// Start starts spec; like fork, it gives the task no native name.
func (b bytesMem) Start(ctx context.Context, spec Spec) (Started, error) {
	s, err := b.memBackend.Start(ctx, spec)
	s.Unit = ""
	return s, err
}

// refusing is a memBackend that refuses tasks in one directory before
// anything starts, and refuses starting (as launchd may) when told.
type refusing struct {
	*memBackend
	dir      string
	startErr error
}

func (r *refusing) Refuse(spec Spec) error {
	if spec.Dir == r.dir {
		return &Refusal{Reason: "its folder is protected", Err: errors.New("r: " + r.dir + " is protected; use --backend f")}
	}
	return nil
}

func (r *refusing) Start(ctx context.Context, spec Spec) (Started, error) {
	if r.startErr != nil {
		r.calls = append(r.calls, "start "+spec.Hash)
		return Started{}, r.startErr
	}
	return r.memBackend.Start(ctx, spec)
}

// TestFallback: a task the chosen backend refuses runs with the Fallback
// when there is one (auto mode), reported once; without one it is an
// error, and the instance it would replace still runs.
func TestFallback(t *testing.T) {
	ctx := context.Background()
	protected := t.TempDir()
	bytesDir := t.TempDir() + "/dir\xfe"
	if err := os.Mkdir(bytesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	refused := &Refusal{Reason: "launchd answered 5", Err: errors.New("r: bootstrap: exit 5")}
	for _, c := range []struct {
		name     string
		dir      string
		startErr error // the chosen backend's Start
		fallback bool  // auto mode
		fbErr    error // the fallback's Start
		want     string
		wantErr  string
	}{
		{"runs where it can", "", nil, true, nil, "r", ""},
		{"protected, auto", protected, nil, true, nil, "f", ""},
		{"protected, named", protected, nil, false, nil, "", "r: " + protected + " is protected; use --backend f"},
		{"bytes, auto", bytesDir, nil, true, nil, "f", ""},
		{"bytes, named", bytesDir, nil, false, nil, "", "backend r cannot run a command or directory that is not valid UTF-8 (use --backend fork)"},
		{"refused as it starts, auto", "", refused, true, nil, "f", ""},
		{"refused as it starts, named", "", refused, false, nil, "", "r: bootstrap: exit 5"},
		{"another failure is no refusal", "", errors.New("r: broken"), true, nil, "", "r: broken"},
		{"the fallback fails too", "", refused, true, errors.New("f: broken"), "", "f: broken (after r: r: bootstrap: exit 5)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &refusing{memBackend: newMem("r"), dir: protected}
			f := bytesMem{newMem("f")}
			m := testManager(t, r.memBackend)
			m.Open = func(name string) (Backend, error) {
				return map[string]Backend{"r": r, "f": f}[name], nil
			}
			var notes []Fallback
			if c.fallback {
				m.Fallback = f
				m.OnFallback = func(fb Fallback) { notes = append(notes, fb) }
			}
			dir := c.dir
			if dir == "" {
				dir = t.TempDir()
			}
			// An instance that runs already (with f, which runs anything),
			// and which a start refused before it began leaves alone.
			m.Backend = f
			first, _ := m.mustRun(t, dir, "sleep", "1")
			m.Backend = r
			r.startErr, f.startErr = c.startErr, c.fbErr
			spec, err := m.Prepare([]string{"sleep", "1"}, dir, os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			// What a btl that died as the fallback started would find.
			var intended string
			f.onStart = func(spec Spec) {
				if st, err := m.Store.Read(); err == nil && st.Processes[spec.Hash] != nil {
					intended = st.Processes[spec.Hash].Backend
				}
			}
			task, _, err := m.Run(ctx, spec)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("Run = %v, want %q", err, c.wantErr)
				}
				if c.startErr == nil && !f.running[first.Token] {
					t.Errorf("a start refused before it began stopped the running instance")
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if task.Backend != c.want {
				t.Errorf("ran with %s, want %s", task.Backend, c.want)
			}
			if c.want == "f" && intended != "f" {
				t.Errorf("as f started the task, its recorded intent named backend %q, want f", intended)
			}
			if c.want == "f" {
				if len(notes) != 1 || notes[0].From != "r" || notes[0].To != "f" || notes[0].Reason == "" {
					t.Errorf("fallbacks reported: %+v, want one from r to f with a reason", notes)
				}
				if want := "not r: " + notes[0].Reason; task.Fallback != want || task.Unit != "" {
					t.Errorf("fallback %q, unit %q; want fallback %q and no unit", task.Fallback, task.Unit, want)
				}
				if s := notes[0].String(); !strings.HasPrefix(s, "r cannot run this task (") || strings.Contains(s, "\n") {
					t.Errorf("note %q", s)
				}
				st, _ := m.Snapshot()
				if got := st.Processes[task.Hash]; got == nil || got.Backend != "f" {
					t.Errorf("recorded %+v, want the task with backend f", got)
				}
			} else if len(notes) != 0 {
				t.Errorf("fallbacks reported: %+v, want none", notes)
			}
		})
	}
}
