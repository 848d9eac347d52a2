// Package faults gives tests disks that fail the way real ones do: a
// filesystem that fills up (a size-limited tmpfs) and a block device whose
// unsynced writes are lost at a power cut (a loop device). Every helper
// needs root and Linux and skips the test with a message saying so otherwise. It is
// imported from tests only.
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RequireRoot skips t unless it runs as root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s (run as root, e.g. sudo -E go test ...)", why)
	}
}

// Fill writes a filler file of n bytes at path (on the filesystem to fill).
// Deleting it gives the space back.
func Fill(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatalf("filling %s: %v", filepath.Base(path), err)
		}
		n -= k
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
