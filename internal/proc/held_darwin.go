package proc

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
)

// PortHolders reports which of ports some process on the machine listens
// on (TCP): for each such port, the PIDs of the processes lsof shows
// holding it (the caller's own, unless it may see others'). Ports nobody
// listens on, as far as lsof can tell, are absent.
func PortHolders(ports []int) map[int][]int {
	out := map[int][]int{}
	if len(ports) == 0 {
		return out
	}
	args := []string{"-nP", "-sTCP:LISTEN", "-Fpn"}
	for _, p := range ports {
		args = append(args, "-iTCP:"+strconv.Itoa(p))
	}
	b, _ := exec.Command("/usr/sbin/lsof", args...).Output()
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	pid := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "p"):
			pid, _ = strconv.Atoi(line[1:])
		case strings.HasPrefix(line, "n"):
			if j := strings.LastIndexByte(line, ':'); j >= 0 {
				if port, err := strconv.Atoi(line[j+1:]); err == nil && want[port] {
					out[port] = append(out[port], pid)
				}
			}
		}
	}
	return out
}
