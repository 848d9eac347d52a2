package testutil

import (
	"github.com/logmesh/logmesh/testutil/ports"

	"fmt"
	"testing"
	"time"
)

// WaitFor polls cond every 20ms until it returns true, failing the test with
// what (and the last detail, if cond returns one through the optional
// describe function) when timeout passes first. It never sleeps longer than
// needed, and is the only way tests here wait for something to happen.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool, describe ...func() string) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		for _, d := range describe {
			what += " (" + d() + ")"
		}
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Poll calls cond every 20ms until it returns true or timeout passes.
func Poll(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// FreeAddr returns a loopback host:port that is free for both TCP and UDP at
// the time of the call (see package ports).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
