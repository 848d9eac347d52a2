//go:build !linux

package faults

import "testing"

// The disks of this package are Linux mounts (tmpfs, loop devices): on
// other systems every helper that needs one skips its test.

const needsLinux = "needs Linux (tmpfs and loop-device mounts)"

// TmpFS is a size-limited tmpfs mounted for one test (Linux only).
type TmpFS struct{ Dir string }

// MountTmpFS skips t: it needs Linux.
func MountTmpFS(t testing.TB, dir string, sizeBytes int64) *TmpFS {
	t.Helper()
	t.Skip(needsLinux)
	return nil
}

// Resize is never reached off Linux.
func (f *TmpFS) Resize(sizeBytes int64) {}

// FreeBytes skips t: it needs Linux.
func FreeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	t.Skip(needsLinux)
	return 0
}

// Disk is a filesystem on a loop device (Linux only).
type Disk struct{ Dir string }

// NewDisk skips t: it needs Linux.
func NewDisk(t testing.TB, dir string, sizeBytes int64) *Disk {
	t.Helper()
	t.Skip(needsLinux)
	return nil
}

// PowerCut is never reached off Linux.
func (d *Disk) PowerCut() *Disk { return d }
