package index

import (
	"path/filepath"
	"time"
)

// Badger reads and writes its table files through memory maps. Every table
// it writes (a memtable flush, each compaction's output) is copied into a
// fresh map, and every table a compaction reads is read through one, so
// without help every table the store ever touched stays resident: measured
// on the bench, 210 MiB of mapped tables after 2 M records, growing with
// the store. The kernel could take those pages back, but only under memory
// pressure, and until then they count as the process's RSS (and in its OOM
// score). trimMapped keeps them within Config.MaxMappedBytes by asking the
// kernel to page the tables out when the budget is exceeded; what a query
// or compaction reads afterwards comes from the page cache or the disk.
const mappedCheckEvery = 250 * time.Millisecond

// trimMapped returns the check run every mappedCheckEvery: when the process's
// file-backed resident memory exceeds budget, it pages out the tables of the
// store under prefix, the most resident first, down to half the budget (so
// that a store growing steadily is not trimmed at every check). It returns
// false, ending the checks, once the kernel refuses.
func (db *DB) trimMapped(prefix string, budget int64) func() bool {
	return func() bool {
		rss, err := fileResidentBytes()
		if err != nil || rss <= budget {
			return true
		}
		n, err := pageOutTables(prefix, rss-budget/2)
		if err != nil {
			// a kernel without MADV_PAGEOUT (before 5.4) says EINVAL once
			db.cfg.Logger.Warn("cannot page out the store's mapped tables; they stay resident until the kernel needs the memory", "err", err)
			return false
		}
		db.stats.pageOuts.Add(1)
		db.stats.pagedOutTables.Add(uint64(n))
		return true
	}
}

// mapsPrefix is how the store directory dir appears in /proc/self/maps: an
// absolute path with symbolic links resolved, ending in a separator.
func mapsPrefix(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return dir + string(filepath.Separator)
}
