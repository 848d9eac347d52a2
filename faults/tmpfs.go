//go:build linux

package faults

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

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
