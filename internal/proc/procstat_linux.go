package proc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// fillUsage adds the listening TCP ports to each usage: the caller's
// listening sockets first (sock_diag, else /proc/net/tcp and tcp6), and
// only when there are any, the socket inodes of the trees' open files,
// matched against them. Most lists find no listening socket of the user's,
// and skip the walk through every process's fd directory. CPU and memory
// came with the process table.
func fillUsage(us []Usage) {
	uid := os.Getuid()
	listening, err := diagListening(uid)
	if err != nil {
		// No sock_diag (an old or restricted kernel): the text tables,
		// which walk every connection and cost more.
		listening = map[uint64]int{}
		readListening("/proc/net/tcp", uid, listening)
		readListening("/proc/net/tcp6", uid, listening)
	}
	if len(listening) == 0 {
		return
	}
	for i := range us {
		for _, pid := range us[i].PIDs {
			for _, ino := range socketInodes(pid) {
				if port, ok := listening[ino]; ok {
					us[i].Ports = append(us[i].Ports, port)
				}
			}
		}
	}
}

// diagListening asks the kernel's sock_diag netlink interface for the
// listening TCP sockets of uid (every user's for -1), IPv4 and IPv6: their
// local ports by inode. Unlike
// /proc/net/tcp, which walks every connection of the system, it visits
// only listening sockets.
func diagListening(uid int) (map[uint64]int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(fd) }()
	out := map[uint64]int{}
	for _, family := range []byte{unix.AF_INET, unix.AF_INET6} {
		if err := diagQuery(fd, family, uid, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// diagQuery sends one inet_diag_req_v2 for listening TCP sockets of family
// and reads the answer, the sockets of uid, into ports.
func diagQuery(fd int, family byte, uid int, ports map[uint64]int) error {
	const (
		reqLen    = 56 // struct inet_diag_req_v2
		msgLen    = 72 // struct inet_diag_msg
		tcpListen = 10
	)
	req := make([]byte, unix.NLMSG_HDRLEN+reqLen)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1)
	body := req[unix.NLMSG_HDRLEN:]
	body[0], body[1] = family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(body[4:], 1<<tcpListen)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				return errors.New("sock_diag: request refused")
			}
			if len(m.Data) < msgLen {
				continue
			}
			if uid >= 0 && int(binary.NativeEndian.Uint32(m.Data[64:])) != uid {
				continue
			}
			port := int(binary.BigEndian.Uint16(m.Data[4:]))
			if ino := binary.NativeEndian.Uint32(m.Data[68:]); ino != 0 {
				ports[uint64(ino)] = port
			}
		}
	}
}

// socketInodes lists the inodes of the sockets pid has open.
func socketInodes(pid int) []uint64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	_ = d.Close()
	var out []uint64
	for _, n := range names {
		target, err := os.Readlink(dir + n)
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(target, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out = append(out, ino)
			}
		}
	}
	return out
}

// readListening adds the sockets of uid (every user's for -1) in LISTEN
// state of a /proc/net/tcp file to ports, by inode.
func readListening(path string, uid int, ports map[uint64]int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		if ino, port, owner, ok := parseTCPLine(sc.Bytes()); ok && (uid < 0 || owner == uid) {
			ports[ino] = port
		}
	}
}

// parseTCPLine reads one line of /proc/net/tcp: the inode, local port and
// owner's UID of a listening socket.
func parseTCPLine(line []byte) (inode uint64, port, uid int, ok bool) {
	f := bytes.Fields(line)
	// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
	if len(f) < 10 || string(f[3]) != "0A" {
		return 0, 0, 0, false
	}
	i := bytes.LastIndexByte(f[1], ':')
	if i < 0 {
		return 0, 0, 0, false
	}
	p, err := strconv.ParseUint(string(f[1][i+1:]), 16, 16)
	if err != nil {
		return 0, 0, 0, false
	}
	ino, err := strconv.ParseUint(string(f[9]), 10, 64)
	if err != nil || ino == 0 {
		return 0, 0, 0, false
	}
	owner, err := strconv.Atoi(string(f[7]))
	if err != nil {
		return 0, 0, 0, false
	}
	return ino, int(p), owner, true
}
