//go:build !linux

package index

import (
	"fmt"
	"os"
)

// syncLogsByDescriptor: elsewhere a sync through a descriptor is not known
// to cover pages written through a memory map, so Sync calls Badger's Sync
// for the active logs (under Badger's lock) and syncs only the filled
// memtable logs itself.
const syncLogsByDescriptor = false

// syncFileData syncs the file at path.
func syncFileData(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
