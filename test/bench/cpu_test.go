package bench

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (moto_server) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parens", "7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 100 100 0 0", 2 * time.Second, false},
		{"truncated", "7 (x) R 1 2", 0, true},
		{"no paren", "garbage", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStatCPU(c.in)
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("got %v, %v; want %v (err %v)", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestChildrenSeesASubprocess(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	kids := Children(os.Getpid())
	if kids[cmd.Process.Pid] != "sleep" {
		t.Fatalf("children %v do not include sleep pid %d", kids, cmd.Process.Pid)
	}
	if _, ok := SnapshotCPU()["sleep"]; !ok {
		t.Fatal("SnapshotCPU misses the child")
	}
}
