package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// dialTimeout bounds how long finding the user manager may take.
const dialTimeout = 5 * time.Second

// address is one way to reach the user manager.
type address struct {
	addr    string
	private bool // the manager's own socket: no bus daemon, no Hello
}

// addresses lists where the user manager may be reached, in order: the
// manager's private socket $XDG_RUNTIME_DIR/systemd/private (as systemctl
// --user and systemd-run --user use it: no bus daemon in between, no
// Hello, and the manager sends its signals to every client, subscribed or
// not), then $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR/bus. An
// autolaunch: address is skipped: btl never starts a bus.
func addresses() []address {
	var out []address
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt != "" && filepath.IsAbs(rt) {
		if p := filepath.Join(rt, "systemd", "private"); isSocket(p) {
			out = append(out, address{addr: "unix:path=" + p, private: true})
		}
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && !strings.Contains(a, "autolaunch:") {
		out = append(out, address{addr: a})
	}
	if rt == "" || !filepath.IsAbs(rt) {
		return out
	}
	if bus := "unix:path=" + filepath.Join(rt, "bus"); isSocket(filepath.Join(rt, "bus")) && (len(out) == 0 || out[len(out)-1].addr != bus) {
		out = append(out, address{addr: bus})
	}
	return out
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Type() == os.ModeSocket
}

// conn is a connection to the user manager.
type conn struct {
	*sd.Conn
	raw     *dbus.Conn // the connection method calls go through
	private bool
}

// dial connects to the first address where a systemd user manager answers.
func dial(ctx context.Context) (*conn, error) {
	addrs := addresses()
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no user bus (DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset or hold no socket)", ErrUnavailable)
	}
	var errs []error
	for _, a := range addrs {
		c, err := connect(ctx, a)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a.addr, err))
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

// connect opens a connection at a and checks that a systemd manager
// answers there. go-systemd asks for two connections, one for method calls
// and one for signals; both are the same one here, which spares a connect,
// an authentication and a Hello per btl command.
func connect(ctx context.Context, a address) (*conn, error) {
	var first *dbus.Conn
	open := func() (*dbus.Conn, error) {
		if first != nil {
			return first, nil
		}
		c, err := dbus.Dial(a.addr)
		if err != nil {
			return nil, err
		}
		// EXTERNAL with the numeric uid: no user name lookup.
		if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			_ = c.Close()
			return nil, err
		}
		if !a.private {
			if err := c.Hello(); err != nil {
				_ = c.Close()
				return nil, err
			}
		}
		first = c
		return c, nil
	}
	sc, err := sd.NewConnection(open)
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: sc, raw: first, private: a.private}
	if a.private {
		// Only a systemd manager listens on its private socket, and it
		// has just answered the authentication.
		return c, nil
	}
	var version string
	if err := c.manager().CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0,
		"org.freedesktop.systemd1.Manager", "Version").Store(&version); err != nil {
		sc.Close()
		return nil, fmt.Errorf("no systemd manager answers: %w", err)
	}
	return c, nil
}

func (c *conn) manager() dbus.BusObject {
	return c.raw.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
}

// unrefUnit drops the reference StartTransientUnit's AddRef took.
func (c *conn) unrefUnit(ctx context.Context, unit string) error {
	return c.manager().CallWithContext(ctx, "org.freedesktop.systemd1.Manager.UnrefUnit", 0, unit).Err
}

// dbusErrorName returns the D-Bus error name carried by err, if any.
func dbusErrorName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	var pe *dbus.Error
	if errors.As(err, &pe) {
		return pe.Name
	}
	return ""
}

// Booted reports whether systemd runs this system (/run/systemd/system
// exists): what `auto` checks before it tries New. It is one stat.
func Booted() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}
