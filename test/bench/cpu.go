package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

// CPUTime is the user+system CPU a process has used (its own threads).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return parseStatCPU(string(b))
}

func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) may hold spaces: fields count from after ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc stat")
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc stat utime/stime: %v %v", err1, err2)
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// Children lists the direct child processes of pid with their command names.
func Children(pid int) map[int]string {
	out := map[int]string{}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			name, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
			out[c] = strings.TrimSpace(string(name))
		}
	}
	return out
}

// CPUSnapshot is the CPU used so far by this process and by each child.
type CPUSnapshot map[string]time.Duration

// SnapshotCPU reads this process's and its children's CPU time, keyed
// "self" and by command name (children of one name are added up).
func SnapshotCPU() CPUSnapshot {
	s := CPUSnapshot{}
	if d, err := CPUTime(os.Getpid()); err == nil {
		s["self (emulators, control plane)"] = d
	}
	for pid, name := range Children(os.Getpid()) {
		if d, err := CPUTime(pid); err == nil {
			s[name] += d
		}
	}
	return s
}

// Sub is the CPU used between before and s.
func (s CPUSnapshot) Sub(before CPUSnapshot) CPUSnapshot {
	out := CPUSnapshot{}
	for k, v := range s {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}
