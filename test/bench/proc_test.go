package bench

import (
	"os"
	"testing"
)

func TestParseStatus(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		rss, hwm float64
		wantErr  bool
	}{
		{"both", "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n", 10, 20, false},
		{"missing hwm", "VmRSS:\t 1024 kB\n", 0, 0, true},
		{"bad unit", "VmRSS:\t 1024 MB\nVmHWM:\t 1024 kB\n", 0, 0, true},
		{"empty", "", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := parseStatus([]byte(c.in))
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if !c.wantErr && (m.RSSMB != c.rss || m.PeakMB != c.hwm) {
				t.Fatalf("got %+v, want rss %v hwm %v", m, c.rss, c.hwm)
			}
		})
	}
}

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSSMB <= 0 || m.PeakMB < m.RSSMB {
		t.Fatalf("implausible memory %+v", m)
	}
}
