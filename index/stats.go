package index

import (
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"

	"github.com/logmesh/logmesh/record"
)

type stats struct {
	commits           atomic.Uint64
	commitErrors      atomic.Uint64
	commitNanos       atomic.Uint64
	recordsWritten    atomic.Uint64
	windowsDropped    atomic.Uint64
	vlogGCRuns        atomic.Uint64
	journalPruned     atomic.Uint64
	pageOuts          atomic.Uint64
	pagedOutTables    atomic.Uint64
	syncs             atomic.Uint64
	scrubs            atomic.Uint64
	scrubBuckets      atomic.Uint64
	scrubUndecodable  atomic.Uint64
	blocksWritten     atomic.Uint64
	recordsSealed     atomic.Uint64
	blocksUnsealed    atomic.Uint64
	blocksMerged      atomic.Uint64
	mergedInCommitter atomic.Uint64 // of blocksMerged, those a switch encoded inside the committer
	blocksSkipped     atomic.Uint64
	sealsRetried      atomic.Uint64
	slicesMoved       atomic.Uint64
	movedRecopied     atomic.Uint64
	movedWhole        atomic.Uint64 // of movedRecopied, runs copied again whole (switch.go)
	slicesDropped     atomic.Uint64
	sealHeld          atomic.Int64  // nanoseconds writes waited for the sealer
	capturedBlocks    atomic.Uint64 // blocks cut from memory ahead of their move (capture.go)
	runsFromMemory    atomic.Uint64 // runs a move took from the capture
	runsReadBack      atomic.Uint64 // runs a move read back from the store
	settled           atomic.Uint64
	expiredBlocks     atomic.Uint64 // keys of moved spaces retention deleted one by one (dropWindows)
	drops             atomic.Uint64 // Badger DropPrefix calls (dropPrefix)
	dropNanos         atomic.Int64  // nanoseconds they held the writes
}

// Stats is a snapshot of the store's counters and sizes.
type Stats struct {
	// Records is the number of records stored (from the digests).
	Records uint64
	// Windows is the number of live time windows.
	Windows int
	// LSMBytes and ValueLogBytes are Badger's on-disk sizes.
	LSMBytes, ValueLogBytes int64
	// Commits counts group commits; CommitErrors those that failed.
	Commits, CommitErrors uint64
	// CommitSeconds is the total time spent committing.
	CommitSeconds float64
	// RecordsWritten counts records newly stored since open.
	RecordsWritten uint64
	// WindowsDropped counts windows removed by retention since open.
	WindowsDropped uint64
	// ValueLogGCRuns counts value-log files rewritten by garbage collection.
	ValueLogGCRuns uint64
	// JournalPruned counts journal entries deleted since open.
	JournalPruned uint64
	// JournalHead is the next journal sequence.
	JournalHead uint64
	// Writable is false while the store refuses writes for lack of disk
	// space (see Config.MinFreeDiskBytes).
	Writable bool
	// FreeDiskBytes is the free space last measured on the store's
	// filesystem (-1 before the first measurement); MinFreeDiskBytes is the
	// floor below which writes are refused.
	FreeDiskBytes, MinFreeDiskBytes int64
	// WritesRefused counts writes refused with ErrNoSpace.
	WritesRefused uint64
	// PageOuts counts the times mapped tables were paged out for exceeding
	// Config.MaxMappedBytes, and PagedOutTables the table mappings advised.
	PageOuts, PagedOutTables uint64
	// Syncs counts syncs of the logs to disk (per commit, per interval,
	// checkpoints, and those callers ask for).
	Syncs uint64
	// Scrubs counts passes of Scrub; ScrubBuckets the buckets whose digest
	// disagreed with the store; ScrubUndecodable the damaged records deleted.
	Scrubs, ScrubBuckets, ScrubUndecodable uint64
	// BlocksWritten counts blocks the sealer wrote, RecordsSealed the records
	// it moved into them, BlocksUnsealed the blocks a late record or a
	// delete inside their range turned back into loose records.
	BlocksWritten, RecordsSealed, BlocksUnsealed uint64
	// BlocksMerged counts the moved blocks a switch re-encoded with the
	// late records and deletes of their range (switch.go).
	BlocksMerged uint64
	// BlocksSkipped counts the blocks word scans and counts passed over
	// because their word filter ruled the word out (ScanOptions.Word).
	BlocksSkipped uint64
	// SealsRetried counts runs the sealer left for its next pass because
	// they changed while it encoded their blocks.
	SealsRetried uint64
	// SlicesMoved counts slices the sealer switched to the moved space
	// (moved.go); MovedRunsRecopied the runs whose changes after their
	// blocks were written it carried over at the switch; SlicesDropped the
	// moved slices whose loose records were dropped.
	SlicesMoved, MovedRunsRecopied, SlicesDropped uint64
	// DeletesSettled counts the own-version tombstones written under
	// deleted values before compactions could drop their deletes (settle.go).
	DeletesSettled uint64
	// ExpiredBlocksDeleted counts the keys of moved spaces (blocks, and late
	// records among them) retention deleted one by one, so that value-log
	// collections can reclaim the files of those in the value log
	// (maintenance.go, dropWindows).
	ExpiredBlocksDeleted uint64
	// CapturedBlocks counts the blocks the sealer cut from the records it
	// keeps in memory ahead of their slice's move; RunsFromMemory and
	// RunsReadBack the runs moves took from memory and read back from the
	// store; CapturedBytes is what the records kept in memory take now
	// (capture.go); CaptureShed counts the slices it gave up, to be read
	// back, because it held twice its budget.
	CapturedBlocks, RunsFromMemory, RunsReadBack, CaptureShed uint64
	CapturedBytes                                             int64
	// Drops counts Badger's DropPrefix calls (retention, the loose records
	// of moved slices, copies of unfinished moves) and DropSeconds how long
	// they took: each refuses every write while it runs.
	Drops       uint64
	DropSeconds float64
}

// Stats returns a snapshot of the store's counters.
func (db *DB) Stats() Stats {
	s := Stats{
		Commits:              db.stats.commits.Load(),
		CommitErrors:         db.stats.commitErrors.Load(),
		CommitSeconds:        float64(db.stats.commitNanos.Load()) / 1e9,
		RecordsWritten:       db.stats.recordsWritten.Load(),
		WindowsDropped:       db.stats.windowsDropped.Load(),
		ValueLogGCRuns:       db.stats.vlogGCRuns.Load(),
		JournalPruned:        db.stats.journalPruned.Load(),
		JournalHead:          db.nextSeq.Load(),
		Writable:             db.space.writable.Load(),
		FreeDiskBytes:        db.space.free.Load(),
		WritesRefused:        db.space.refused.Load(),
		PageOuts:             db.stats.pageOuts.Load(),
		PagedOutTables:       db.stats.pagedOutTables.Load(),
		Syncs:                db.stats.syncs.Load(),
		Scrubs:               db.stats.scrubs.Load(),
		ScrubBuckets:         db.stats.scrubBuckets.Load(),
		ScrubUndecodable:     db.stats.scrubUndecodable.Load(),
		BlocksWritten:        db.stats.blocksWritten.Load(),
		RecordsSealed:        db.stats.recordsSealed.Load(),
		BlocksUnsealed:       db.stats.blocksUnsealed.Load(),
		BlocksMerged:         db.stats.blocksMerged.Load(),
		BlocksSkipped:        db.stats.blocksSkipped.Load(),
		SealsRetried:         db.stats.sealsRetried.Load(),
		SlicesMoved:          db.stats.slicesMoved.Load(),
		MovedRunsRecopied:    db.stats.movedRecopied.Load(),
		SlicesDropped:        db.stats.slicesDropped.Load(),
		DeletesSettled:       db.stats.settled.Load(),
		ExpiredBlocksDeleted: db.stats.expiredBlocks.Load(),
		CapturedBlocks:       db.stats.capturedBlocks.Load(),
		RunsFromMemory:       db.stats.runsFromMemory.Load(),
		RunsReadBack:         db.stats.runsReadBack.Load(),
		Drops:                db.stats.drops.Load(),
		DropSeconds:          float64(db.stats.dropNanos.Load()) / 1e9,
	}
	s.CapturedBytes, s.CaptureShed = db.capture.pendingBytes()
	s.MinFreeDiskBytes = db.space.minFree
	s.LSMBytes, s.ValueLogBytes = db.diskUsage()
	db.dig.mu.Lock()
	s.Windows = len(db.dig.mu.windows)
	for _, wd := range db.dig.mu.windows {
		for i := range wd.buckets {
			s.Records += wd.buckets[i].Count
		}
	}
	db.dig.mu.Unlock()
	return s
}

// WindowDigests returns a copy of the bucket digests of one partition in
// one window, and the change generation of that partition-window (it moves
// whenever the digests change).
func (db *DB) WindowDigests(w record.Window, p record.Partition) (d [record.BucketsPerPartition]record.Digest, gen uint64) {
	db.dig.mu.Lock()
	defer db.dig.mu.Unlock()
	wd := db.dig.mu.windows[w]
	if wd == nil {
		return d, 0
	}
	first, _ := p.Buckets()
	copy(d[:], wd.buckets[first:])
	return d, wd.partGen[p]
}

// Windows returns the live windows that hold records of partition p, in order.
func (db *DB) Windows(p record.Partition) []record.Window {
	cutoff := db.cutoff()
	first, end := p.Buckets()
	db.dig.mu.Lock()
	defer db.dig.mu.Unlock()
	var out []record.Window
	for w, wd := range db.dig.mu.windows {
		if w < cutoff {
			continue
		}
		for b := first; b < end; b++ {
			if wd.buckets[b].Count != 0 {
				out = append(out, w)
				break
			}
		}
	}
	sortWindows(out)
	return out
}

// AllWindows returns every live window with records, in order.
func (db *DB) AllWindows() []record.Window {
	cutoff := db.cutoff()
	db.dig.mu.Lock()
	defer db.dig.mu.Unlock()
	out := make([]record.Window, 0, len(db.dig.mu.windows))
	for w := range db.dig.mu.windows {
		if w >= cutoff {
			out = append(out, w)
		}
	}
	sortWindows(out)
	return out
}

// Digest returns the digest of every record in the store (all windows and
// buckets merged): two stores hold the same set exactly when these agree.
func (db *DB) Digest() record.Digest {
	var d record.Digest
	db.dig.mu.Lock()
	defer db.dig.mu.Unlock()
	for _, wd := range db.dig.mu.windows {
		for i := range wd.buckets {
			d.Merge(wd.buckets[i])
		}
	}
	return d
}

// PartitionCounts returns, for one window, how many records each partition holds.
func (db *DB) partitionCounts(w record.Window) (counts [record.NumPartitions]uint64) {
	db.dig.mu.Lock()
	defer db.dig.mu.Unlock()
	wd := db.dig.mu.windows[w]
	if wd == nil {
		return counts
	}
	for b := range wd.buckets {
		counts[record.Bucket(b).Partition()] += wd.buckets[b].Count
	}
	return counts
}

func sortWindows(ws []record.Window) { slices.Sort(ws) }

// diskUsage sums the disk space the store's files take, by kind. Badger's own Size is refreshed
// only once a minute, which misleads right after ingestion.
func (db *DB) diskUsage() (lsm, vlog int64) {
	entries, err := os.ReadDir(db.bdb.Opts().Dir)
	if err != nil {
		return db.bdb.Size()
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		size := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			size = st.Blocks * 512 // allocated, not apparent: Badger preallocates its logs
		}
		if filepath.Ext(e.Name()) == ".vlog" {
			vlog += size
		} else {
			lsm += size
		}
	}
	return lsm, vlog
}

// Level describes one level of the store's LSM tree: how compaction keeps up.
type Level struct {
	Level, Tables int
	Bytes         int64
	// Score above 1 means the level waits for compaction.
	Score float64
}

// Levels returns the LSM tree's levels.
func (db *DB) Levels() []Level {
	if db.closed.Load() {
		return nil
	}
	var out []Level
	for _, l := range db.bdb.Levels() {
		out = append(out, Level{Level: l.Level, Tables: l.NumTables, Bytes: l.Size, Score: l.Score})
	}
	return out
}

// windowCount is the number of records of window w, from its digests.
func (db *DB) windowCount(w record.Window) (n uint64) {
	db.dig.mu.Lock()
	defer db.dig.mu.Unlock()
	if wd := db.dig.mu.windows[w]; wd != nil {
		for b := range wd.buckets {
			n += wd.buckets[b].Count
		}
	}
	return n
}
