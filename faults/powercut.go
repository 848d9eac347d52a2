//go:build linux

package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Disk is an ext4 filesystem on a loop device over a sparse file, for power
// cut tests.
//
// Why not device-mapper: dm-flakey or dm-log-writes would drop unsynced
// writes at the block layer, but containers often lack the device-mapper
// driver (/dev/mapper/control). A loop device needs nothing but loop
// support: everything the filesystem has written to the device (which is
// everything it synced) is in the backing file, and what sits dirty in the
// page cache of the filesystem on top is not. PowerCut copies the backing
// file right after the writer is killed: the copy is the disk as a power
// cut would leave it. The kernel flushes a dirty file on its own only once
// it has been dirty for vm.dirty_expire_centisecs (30 s by default), or
// under memory pressure, so writes not synced in the last seconds are
// missing from the copy; the copy can hold more than was synced, never less.
type Disk struct {
	t       testing.TB
	image   string // backing file
	dev     string // /dev/loopN while attached
	Dir     string // mount point while mounted
	mounted bool
}

// NewDisk makes an ext4 filesystem of sizeBytes in a sparse file and mounts
// it at dir (created if missing). It skips without root or loop devices.
func NewDisk(t testing.TB, dir string, sizeBytes int64) *Disk {
	t.Helper()
	RequireRoot(t, "attach a loop device")
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	image := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(sizeBytes)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := run("mkfs.ext4", "-q", "-F", image); err != nil {
		t.Fatal(err)
	}
	d := &Disk{t: t, image: image}
	d.mount(dir)
	return d
}

func (d *Disk) mount(dir string) {
	d.t.Helper()
	out, err := exec.Command("losetup", "-f", "--show", d.image).CombinedOutput()
	if err != nil {
		d.t.Skipf("cannot attach a loop device here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	d.dev = strings.TrimSpace(string(out))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := run("mount", "-t", "ext4", d.dev, dir); err != nil {
		_ = run("losetup", "-d", d.dev)
		d.t.Fatal(err)
	}
	d.Dir, d.mounted = dir, true
	d.t.Cleanup(d.detach)
}

// detach unmounts the filesystem and frees the loop device; idempotent.
func (d *Disk) detach() {
	if d.mounted {
		if err := syscall.Unmount(d.Dir, 0); err != nil {
			_ = syscall.Unmount(d.Dir, syscall.MNT_DETACH)
		}
		d.mounted = false
	}
	if d.dev != "" {
		_ = run("losetup", "-d", d.dev)
		d.dev = ""
	}
}

// PowerCut takes the disk as a power cut would leave it: a copy of what
// reached the device, without what the page cache held unsynced. The
// caller must have stopped every writer first (SIGKILL: a clean exit
// syncs). The original is then detached and thrown away, and the copy is
// mounted at the same place: the filesystem replays its journal as after a
// real cut. Call it promptly after the kill (see Disk).
func (d *Disk) PowerCut() *Disk {
	d.t.Helper()
	snap := filepath.Join(d.t.TempDir(), "after-cut.img")
	if err := run("cp", "--sparse=always", d.image, snap); err != nil {
		d.t.Fatal(err)
	}
	dir := d.Dir
	d.detach() // unmounting writes the dirty pages back, into the discarded original
	_ = os.Remove(d.image)
	cut := &Disk{t: d.t, image: snap}
	cut.mount(dir)
	return cut
}
