package core

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// fillUsage adds the listening TCP ports to each usage: the socket inodes
// of the tree's open files, matched against /proc/net/tcp and tcp6, each
// read once. CPU and memory came with the process table.
func fillUsage(us []Usage) {
	inodes := make([]map[uint64]bool, len(us))
	any := false
	for i := range us {
		for _, pid := range us[i].PIDs {
			for _, ino := range socketInodes(pid) {
				if inodes[i] == nil {
					inodes[i] = map[uint64]bool{}
				}
				inodes[i][ino] = true
				any = true
			}
		}
	}
	if !any {
		return
	}
	listening := map[uint64]int{}
	readListening("/proc/net/tcp", listening)
	readListening("/proc/net/tcp6", listening)
	for i := range us {
		for ino := range inodes[i] {
			if port, ok := listening[ino]; ok {
				us[i].Ports = append(us[i].Ports, port)
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
	d.Close()
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

// readListening adds the sockets in LISTEN state of a /proc/net/tcp file
// to ports, by inode.
func readListening(path string, ports map[uint64]int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		if ino, port, ok := parseTCPLine(sc.Bytes()); ok {
			ports[ino] = port
		}
	}
}

// parseTCPLine reads one line of /proc/net/tcp: the inode and local port
// of a listening socket.
func parseTCPLine(line []byte) (inode uint64, port int, ok bool) {
	f := bytes.Fields(line)
	// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
	if len(f) < 10 || string(f[3]) != "0A" {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(f[1], ':')
	if i < 0 {
		return 0, 0, false
	}
	p, err := strconv.ParseUint(string(f[1][i+1:]), 16, 16)
	if err != nil {
		return 0, 0, false
	}
	ino, err := strconv.ParseUint(string(f[9]), 10, 64)
	if err != nil || ino == 0 {
		return 0, 0, false
	}
	return ino, int(p), true
}
