package lambdarun

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// listensOn reports whether process pid holds the listening TCP socket of
// addr (127.0.0.1:PORT), from /proc: the socket's inode in /proc/net/tcp
// among pid's open files. A free port is chosen before aws-lambda-rie binds
// it, so another server can take it meanwhile; then a dial to addr
// succeeds but reaches that server, and invocations would go there. This
// tells the two apart.
func listensOn(pid int, addr string) (bool, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	ip := net.ParseIP(host).To4()
	port, err := strconv.Atoi(portStr)
	if ip == nil || err != nil {
		return false, fmt.Errorf("lambdarun: %q is not an IPv4 address and port", addr)
	}
	// /proc/net/tcp writes the address as the 32-bit value in host (little
	// endian) order, then the port, both in hex: 127.0.0.1:8080 is
	// 0100007F:1F90.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], port)
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false, err
	}
	defer f.Close()
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == local && fields[3] == "0A" { // 0A: LISTEN
			inode = fields[9]
			break
		}
	}
	if inode == "" {
		return false, nil
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, err
	}
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && target == want {
			return true, nil
		}
	}
	return false, nil
}
