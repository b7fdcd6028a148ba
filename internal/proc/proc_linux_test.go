package proc

import (
	"net"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	info, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if info.PPID != 1 || info.PGID != 4242 || info.Start != 987654 || info.Zombie {
		t.Errorf("parseStat = %+v", info)
	}
	// A stat cut right after starttime, of a zombie.
	if info, err := parseStat(7, []byte("7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555\n")); err != nil || info.Start != 555 || !info.Zombie {
		t.Errorf("short zombie stat: %+v, %v", info, err)
	}
	if _, err := parseStat(1, []byte("1 (x) S 1")); err == nil {
		t.Error("short stat parsed")
	}
}

func TestStatusUID(t *testing.T) {
	for _, c := range []struct {
		in   string
		uid  int
		good bool
	}{
		{"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1003\t1003\t1003\t1003\nGid:\t1003\n", 1003, true},
		{"Name:\tx\nUid:\t0\t1000\t0\t0\n", 0, true},
		{"Name:\tx\n", 0, false},
		{"Name:\tx\nUid:\n", 0, false},
	} {
		uid, ok := statusUID([]byte(c.in))
		if uid != c.uid || ok != c.good {
			t.Errorf("statusUID(%q) = %d, %v", c.in, uid, ok)
		}
	}
}

func TestParseStatUsage(t *testing.T) {
	// utime 150, stime 50, cutime 20, cstime 30 ticks; rss 3 pages.
	line := "9 (srv) S 1 9 9 0 -1 0 0 0 0 0 150 50 20 30 20 0 1 0 1234 4096 3 0\n"
	info, err := parseStat(9, []byte(line))
	if err != nil || info.CPU != 2500*time.Millisecond || info.RSS != 3*uint64(os.Getpagesize()) {
		t.Errorf("parseStat = %+v, %v", info, err)
	}
}

func TestParseTCPLine(t *testing.T) {
	for _, c := range []struct {
		line  string
		ino   uint64
		port  int
		uid   int
		found bool
	}{
		{"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 123456 1 0000000000000000 100 0 0 10 0", 123456, 8080, 1001, true},
		{"   1: 00000000000000000000000001000000:1435 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 777 1", 777, 5173, 1001, true},
		{"   2: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1001        0 999 1", 0, 0, 0, false},
		{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", 0, 0, 0, false},
	} {
		ino, port, uid, ok := parseTCPLine([]byte(c.line))
		if ino != c.ino || port != c.port || uid != c.uid || ok != c.found {
			t.Errorf("parseTCPLine(%q) = %d, %d, %d, %v", c.line, ino, port, uid, ok)
		}
	}
}

// TestListeningSourcesAgree: sock_diag and /proc/net/tcp both find a
// listening socket of the caller, under the same inode, and neither reports
// it as another user's. (Other sockets come and go on a shared machine
// between the two reads.)
func TestListeningSourcesAgree(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err) // no IPv6 here
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		uid := os.Getuid()
		diag, err := diagListening(uid)
		if err != nil {
			t.Fatal(err)
		}
		text := map[uint64]int{}
		readListening("/proc/net/tcp", uid, text)
		readListening("/proc/net/tcp6", uid, text)
		other, err := diagListening(uid + 4242)
		if err != nil {
			t.Fatal(err)
		}
		otherText := map[uint64]int{}
		readListening("/proc/net/tcp", uid+4242, otherText)
		readListening("/proc/net/tcp6", uid+4242, otherText)
		l.Close()
		for ino, p := range other {
			if p == port && text[ino] == port {
				t.Errorf("%s: sock_diag reports the caller's socket (inode %d) as UID %d's", addr, ino, uid+4242)
			}
		}
		for ino, p := range otherText {
			if p == port && diag[ino] == port {
				t.Errorf("%s: /proc/net/tcp reports the caller's socket (inode %d) as UID %d's", addr, ino, uid+4242)
			}
		}
		found := false
		for ino, p := range diag {
			if p == port {
				found = true
				if text[ino] != port {
					t.Errorf("%s: sock_diag has inode %d on port %d, /proc/net/tcp has %d", addr, ino, port, text[ino])
				}
			}
		}
		if !found {
			t.Errorf("%s: port %d not found by sock_diag", addr, port)
		}
	}
}
