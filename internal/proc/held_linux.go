package proc

import (
	"os"
	"strconv"
	"syscall"
)

// PortHolders reports which of ports some process on the machine listens
// on (TCP, IPv4 or IPv6): for each such port, the PIDs of the caller's own
// processes that hold it, none when only another user's processes do
// (their open files cannot be read). Ports nobody listens on are absent.
func PortHolders(ports []int) map[int][]int {
	listening, err := diagListening()
	if err != nil {
		listening = map[uint64]int{}
		readListening("/proc/net/tcp", listening)
		readListening("/proc/net/tcp6", listening)
	}
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	out := map[int][]int{}
	inodes := map[uint64]int{}
	for ino, p := range listening {
		if want[p] {
			out[p] = nil
			inodes[ino] = p
		}
	}
	if len(out) == 0 {
		return out
	}
	uid := os.Getuid()
	d, err := os.Open("/proc")
	if err != nil {
		return out
	}
	names, _ := d.Readdirnames(-1)
	_ = d.Close()
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if fi, err := os.Stat("/proc/" + n); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
			continue
		}
		for _, ino := range socketInodes(pid) {
			if p, ok := inodes[ino]; ok {
				out[p] = append(out[p], pid)
			}
		}
	}
	return out
}
