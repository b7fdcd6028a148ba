package proc

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// fillUsage adds CPU time, resident memory and listening TCP ports to each
// usage: one ps and one lsof for all the trees' processes.
func fillUsage(us []Usage) {
	owner := map[int]int{}
	var pids []string
	for i := range us {
		for _, pid := range us[i].PIDs {
			owner[pid] = i
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	if len(pids) == 0 {
		return
	}
	list := strings.Join(pids, ",")
	if out, err := exec.Command("/bin/ps", "-o", "pid=,rss=,time=", "-p", list).Output(); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			pid, err := strconv.Atoi(f[0])
			i, ok := owner[pid]
			if err != nil || !ok {
				continue
			}
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				us[i].Memory += kb * 1024
			}
			us[i].CPU += psTime(f[2])
		}
	}
	// -F pn: a "p<pid>" line per process, then "n<host>:<port>" per socket.
	out, _ := exec.Command("/usr/sbin/lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-a", "-p", list, "-Fpn").Output()
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "p"):
			pid, _ := strconv.Atoi(line[1:])
			if i, ok := owner[pid]; ok {
				cur = i
			} else {
				cur = -1
			}
		case strings.HasPrefix(line, "n") && cur >= 0:
			if j := strings.LastIndexByte(line, ':'); j >= 0 {
				if port, err := strconv.Atoi(line[j+1:]); err == nil {
					us[cur].Ports = append(us[cur].Ports, port)
				}
			}
		}
	}
}

// psTime reads ps's cumulative time: [[dd-]hh:]mm:ss.cc.
func psTime(s string) time.Duration {
	var days int
	if d, rest, ok := strings.Cut(s, "-"); ok {
		days, _ = strconv.Atoi(d)
		s = rest
	}
	parts := strings.Split(s, ":")
	var secs float64
	for _, p := range parts {
		v, _ := strconv.ParseFloat(p, 64)
		secs = secs*60 + v
	}
	return time.Duration((float64(days)*86400 + secs) * float64(time.Second))
}
