package e2e

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// listeningSockets reads the kernel's socket tables for the sockets pid holds: TCP sockets in
// LISTEN ("ip:port", sorted), and any other socket that can receive unasked (unconnected UDP,
// listening unix sockets).
func listeningSockets(t *testing.T, pid int) (tcp, other []string, ok bool) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d", pid)
	fds, err := os.ReadDir(dir + "/fd")
	must(t, err)
	inodes := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	if len(inodes) == 0 {
		t.Fatalf("pid %d holds no socket", pid)
	}
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		eachLine(t, dir+"/net/"+table, func(f []string) {
			if len(f) < 10 || !inodes[f[9]] {
				return
			}
			local, remote, state := hexAddr(t, f[1]), f[2], f[3]
			switch {
			case strings.HasPrefix(table, "tcp") && state == "0A":
				tcp = append(tcp, local)
			case strings.HasPrefix(table, "udp") && strings.HasSuffix(remote, ":0000"):
				other = append(other, table+" "+local)
			}
		})
	}
	eachLine(t, dir+"/net/unix", func(f []string) {
		// Num RefCount Protocol Flags Type St Inode [Path]; flag 0x10000 is __SO_ACCEPTCON.
		if len(f) >= 7 && inodes[f[6]] {
			if flags, err := strconv.ParseUint(f[3], 16, 32); err == nil && flags&0x10000 != 0 {
				other = append(other, "unix "+strings.Join(f[7:], " "))
			}
		}
	})
	slices.Sort(tcp)
	return tcp, other, true
}

func eachLine(t *testing.T, path string, f func(fields []string)) {
	t.Helper()
	file, err := os.Open(path)
	must(t, err)
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Scan() // header
	for sc.Scan() {
		f(strings.Fields(sc.Text()))
	}
	must(t, sc.Err())
}

// hexAddr decodes the kernel's "0100007F:1F90" (IPv4, or IPv6 in four host-order words).
func hexAddr(t *testing.T, s string) string {
	t.Helper()
	ipHex, portHex, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	must(t, err)
	port, err := strconv.ParseUint(portHex, 16, 16)
	must(t, err)
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is in host (little-endian) order
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}
