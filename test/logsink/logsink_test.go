package logsink

import (
	"strings"
	"sync"
	"testing"
)

func TestBufferConcurrentWritesAllKept(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_, _ = b.Write([]byte("line\n"))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 800 {
		t.Fatalf("%d lines kept, want 800", n)
	}
	got := b.Bytes()
	got[0] = 'X'
	if b.String()[0] != 'l' {
		t.Fatal("Bytes returned the buffer's own memory, not a copy")
	}
}
