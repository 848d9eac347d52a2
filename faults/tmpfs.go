// Package faults gives tests disks that fail the way real ones do: a
// filesystem that fills up (a size-limited tmpfs) and a block device whose
// unsynced writes are lost at a power cut (a loop device). Every helper
// needs root and skips the test with a message saying so otherwise. It is
// imported from tests only.
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RequireRoot skips t unless it runs as root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s (run as root, e.g. sudo -E go test ...)", why)
	}
}

// TmpFS is a size-limited tmpfs mounted for one test.
type TmpFS struct {
	t   testing.TB
	Dir string
}

// MountTmpFS mounts a tmpfs of sizeBytes at dir (created if missing) and
// unmounts it when the test ends. Cleanups run last-in first-out: register
// whatever must stop using the filesystem (a process) after this call.
func MountTmpFS(t testing.TB, dir string, sizeBytes int64) *TmpFS {
	t.Helper()
	RequireRoot(t, "mount a small tmpfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", sizeBytes), "tmpfs", dir); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return &TmpFS{t: t, Dir: dir}
}

// Resize changes the tmpfs's size in place (mount -o remount,size=N); the
// files on it stay.
func (f *TmpFS) Resize(sizeBytes int64) {
	f.t.Helper()
	if err := run("mount", "-o", fmt.Sprintf("remount,size=%d", sizeBytes), f.Dir); err != nil {
		f.t.Fatal(err)
	}
}

// FreeBytes is the space still free on the filesystem.
func FreeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
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
