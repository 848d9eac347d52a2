// Package ports hands out loopback ports for tests.
//
// Ports come from below the kernel's ephemeral range (32768 and up on
// Linux), so an outgoing connection of a parallel test cannot take a port
// between the moment it is handed out and the moment a peer binds it; a
// port is never handed out twice by one test binary.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

const (
	low  = 20000
	high = 32000
)

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// Free returns host:port on host (e.g. "127.0.0.1") that is free for TCP
// and UDP at the time of the call.
func Free(host string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 500; i++ {
		port := low + rand.IntN(high-low)
		if handed[port] {
			continue
		}
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		handed[port] = true
		return addr, nil
	}
	return "", fmt.Errorf("no free TCP and UDP port on %s", host)
}
