package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident set from /proc/<pid>/status, in MiB.
type Memory struct {
	RSSMB  float64 // VmRSS: resident now
	PeakMB float64 // VmHWM: resident high-water mark
}

// ReadMemory reads VmRSS and VmHWM of pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("bench: %w", err)
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("bench: /proc status %s: unexpected %q", k, v)
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return m, fmt.Errorf("bench: /proc status %s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSSMB = kb / 1024
		} else {
			m.PeakMB = kb / 1024
		}
		seen++
	}
	if seen != 2 {
		return m, fmt.Errorf("bench: /proc status without VmRSS and VmHWM")
	}
	return m, nil
}
