//go:build linux

package index

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncLogsByDescriptor: on Linux, fdatasync on a file writes back the pages
// dirtied through a shared memory map of it, so Sync needs no Badger lock.
const syncLogsByDescriptor = true

// syncFileData fdatasyncs the file at path: its data, and its size should
// it have changed (Badger's msync is the same, a data-only sync of the range).
func syncFileData(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", path, err)
	}
	return nil
}
