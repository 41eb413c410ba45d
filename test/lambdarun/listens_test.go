package lambdarun

import (
	"net"
	"os"
	"testing"
)

func TestListensOnTellsTheOwnerOfAPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ok, err := listensOn(os.Getpid(), ln.Addr().String()); err != nil || !ok {
		t.Fatalf("listensOn(self, %s) = %v, %v; want true", ln.Addr(), ok, err)
	}
	// The parent (go test's) does not hold it.
	if ok, err := listensOn(os.Getppid(), ln.Addr().String()); err != nil || ok {
		t.Fatalf("listensOn(parent, %s) = %v, %v; want false", ln.Addr(), ok, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if ok, _ := listensOn(os.Getpid(), addr); ok {
		t.Fatalf("listensOn(self, %s) true after close", addr)
	}
}
