package index

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures a DB. The zero value of every field but Dir means its default.
type Config struct {
	// Dir is the data directory. Required.
	Dir string

	// FsyncInterval is how writes are made durable before they are
	// acknowledged. Zero means "always": each group commit is synced to disk
	// (DB.Sync) before any of its writers is acknowledged, so an acknowledged
	// write survives power loss. A positive interval acknowledges once the
	// commit reached the operating system (which survives a crash of the
	// process) and syncs every interval, so a power failure can lose at most
	// the writes acknowledged in the last interval.
	FsyncInterval time.Duration

	// Retention is how long records are kept, counted from receive time.
	// Whole time windows (record.WindowMillis) expire at once, so records live
	// between Retention and Retention+1h. Default 7 days.
	Retention time.Duration
	// MaxFuture is how far ahead of the trusted clock (see RetentionClock)
	// a record written by another peer (pushed, repaired) may be stamped;
	// later ones are refused (WriteResult.Future). Default 24h; negative:
	// no bound. This peer's own writes are not checked: it mints their IDs.
	MaxFuture time.Duration
	// FutureLimit, when set, replaces MaxFuture: the latest time another
	// peer's record may carry, or false for no bound now. A cluster peer
	// bounds by the latest clock it measured among the members (a member
	// whose clock runs ahead mints IDs ahead, legitimately) plus a slack.
	FutureLimit func() (time.Time, bool)

	// MemTableBytes is the size of one Badger memtable. Larger memtables mean
	// fewer flushes (faster ingestion) and more memory: up to NumMemTables of
	// them are held, and flushing one builds a level-0 table of the same size
	// in memory (about three times its size with compression). Default 16 MiB.
	MemTableBytes int64
	// NumMemTables bounds memtables held in memory (default 2).
	NumMemTables int
	// BlockCacheBytes is the cache of decompressed table blocks (default 32 MiB).
	BlockCacheBytes int64
	// IndexCacheBytes is the cache of table indexes and bloom filters (default 16 MiB).
	IndexCacheBytes int64
	// BlockBytes is the size of a table block before compression; larger
	// blocks compress better and make point lookups read more (default 64 KiB: 16 KiB stored 85 bytes per record of sample syslog, 64 KiB 69).
	BlockBytes int

	// L0Tables is how many level-0 tables (flushed memtables) accumulate
	// before they are compacted into the level below; more means fewer,
	// larger compactions and reads that merge more tables (default 16).
	// Writes stall at twice as many. Every level-0 compaction rewrites the
	// tables of the level below that hold the current window, whatever the
	// number of level-0 tables, so larger batches cost less per record: 8
	// million lines into one peer took 0.77× the CPU with 16 as with 8
	// (logmesh bench --compare-flags "--l0-tables 8" --messages 8000000).
	L0Tables int
	// BaseLevelBytes is the target size of the first level below level 0
	// (default 64 MiB); each further level is ten times larger.
	BaseLevelBytes int64
	// BaseTableBytes is the size of tables below level 0. Compactions build
	// up to a dozen tables at once in memory, so this bounds much of the
	// store's peak memory (default 1 MiB).
	BaseTableBytes int64
	// CompressionLevel is the ZSTD level of table blocks (default 1). Higher
	// levels store less and cost more CPU in compactions (level 3: 3% less
	// disk for seven times the CPU). Badger keeps one encoder per process,
	// made by the first store that compresses: later stores of the same
	// process get its level, whatever they ask.
	CompressionLevel int
	// UncompressedTables stores table blocks as they are (experimental,
	// --table-compression none). With --seal-after, the tree's records are
	// loose ones the sealer drops within minutes, and compactions spent a
	// fifth of the agent's CPU compressing them at every rewrite; the
	// blocks that stay are compressed by the sealer (docs/architecture.md).
	UncompressedTables bool

	// MaxBatchRecords bounds the records of one group commit (default 4096).
	MaxBatchRecords int
	// CheckpointInterval is how often digests are checkpointed; it bounds the
	// journal replayed on open (default 10s).
	CheckpointInterval time.Duration
	// MaintenanceInterval is how often retention, journal pruning and
	// value-log garbage collection run (default 1m).
	MaintenanceInterval time.Duration

	// KeepJournal keeps every journal entry until SetJournalFloor names the
	// lowest one still needed (replication sets it once its cursors are
	// loaded); without it, entries are pruned once the digest checkpoint
	// covers them.
	KeepJournal bool

	// MinFreeDiskBytes is the free space below which the store refuses writes
	// with ErrNoSpace (and says so in Stats.Writable) until space returns.
	// Badger writes through memory maps, so running out of space kills the
	// process with SIGBUS instead of failing a write; this floor keeps room
	// for the flushes and compactions already admitted. Writes resume at an
	// eighth above it. Zero means 4 × NumMemTables × MemTableBytes, at least
	// 32 MiB (128 MiB with the defaults); negative turns the check off.
	MinFreeDiskBytes int64
	// MaxMappedBytes bounds the file-backed memory resident in the process
	// (its /proc/self/statm "shared" pages: the store's table files, which
	// Badger reads and writes through memory maps, and the executable's
	// text). Above it the DB asks the kernel to page the mapped tables out
	// (MADV_PAGEOUT), checked every 250ms. Without it every table Badger ever
	// wrote or compacted stays resident: RSS grows with the store, and the
	// OOM killer counts those pages. Zero means 48 MiB; negative turns it off
	// (Linux only; elsewhere it does nothing).
	MaxMappedBytes int64

	// ValueThreshold is the size from which Badger keeps a value in its
	// value log instead of the LSM tree. Zero keeps every record and journal
	// entry in the tree (compressed there, rewritten by every compaction);
	// a small value (experimental, e.g. 64) puts record bodies in the value
	// log, written once, and leaves only keys to the compactions.
	ValueThreshold int64
	// ValueLogFileBytes is the size at which Badger starts a new value-log
	// file, the unit its value-log GC rewrites (default 256 MiB; Badger
	// takes 1 MiB to 2 GiB).
	ValueLogFileBytes int64

	// SealAfter is how long after a window ends the sealer turns its
	// records into blocks (seal.go): one entry per SealBlockRecords records
	// of a partition's run, compressed together. Records that arrive later
	// (replication, repair) unseal the block they fall in and are sealed
	// again at a later pass. Zero (the default) or negative: never; see
	// docs/architecture.md, "Blocks in the store", for why it is off.
	SealAfter time.Duration
	// SealBlockRecords is the most records of one block (default 1024).
	SealBlockRecords int
	// SealMinRecords is the fewest loose records the sealer makes a block
	// of on their own (default 64, at most SealBlockRecords): a block of
	// fewer takes about as much disk as the same records loose after
	// compaction, or more (BenchmarkBlockBytesPerLine: 116 B/line for 16
	// records, 93 for 32, 75 for 64, against 80 loose), and a minute
	// slice's runs are that small at low rates. Fewer stay loose (a move
	// copies them loose); loose records beside a block with room are
	// sealed into it whatever their number.
	SealMinRecords int
	// SealInterval is how often the sealer looks for windows to seal
	// (default 15 seconds).
	SealInterval time.Duration
	// SealCaptureBytes bounds the records the sealer keeps in memory, as
	// the committer stores them, to move each minute slice without reading
	// it back (capture.go): past it, blocks are cut early, smaller. Default
	// 64 MiB; negative: every slice is read back. Only with SealAfter.
	SealCaptureBytes int64
	// DropMovedEvery is the least time between two drops of the loose
	// records of moved slices by maintenance (default 5 minutes; negative:
	// at every maintenance). Each drop is one Badger DropPrefix, which holds
	// every write while it flushes the memtables and merges all of level 0
	// into the base level: 11-17 s in a sustained run at 60 000 lines/s,
	// whatever it drops. Between drops the moved slices' loose records stay
	// on disk beside their blocks. A disk nearly full drops at once.
	DropMovedEvery time.Duration

	// DiskCheckInterval is how often free space is measured while writes are
	// refused, so the store turns writable without waiting for a write
	// (default 1s). Writes measure it themselves, once per group commit.
	DiskCheckInterval time.Duration

	// Logger receives the DB's own logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock used for retention when RetentionClock is nil
	// (default time.Now).
	Now func() time.Time
	// RetentionClock, when set, is the time retention is computed from: in
	// a cluster, the cluster's time rather than this peer's clock alone.
	// While it answers false, the retention cutoff stays where it was and
	// nothing is deleted.
	RetentionClock func() (time.Time, bool)

	// syncFile syncs one of Badger's logs (default syncFileData); tests
	// count the calls with it.
	syncFile func(path string) error

	// freeBytes measures the free space of a directory's filesystem
	// (default statfs); tests fake a full disk with it.
	freeBytes func(dir string) (int64, error)

	// noSealLoop: tests drive the sealer (sealWindow, cutCaptured)
	// themselves; captureSince, when set, is the time from which slices
	// are captured instead of the opening's (capture.go).
	noSealLoop   bool
	captureSince time.Time

	// migrateHook, when set, is called after each migration transaction
	// with the records moved so far; an error stops the migration there
	// (tests stop one half-way, as a kill would).
	migrateHook func(moved int) error
}

// DefaultConfig returns the production defaults for dir.
func DefaultConfig(dir string) Config {
	c := Config{Dir: dir}
	c.fillDefaults()
	return c
}

// TestConfig returns a configuration sized for many DBs in one process.
// Its sealer makes a block of any number of loose records (SealMinRecords
// 1), so that tests of sealing need not write 64 records per run; the
// tests of the minimum set it.
func TestConfig(dir string) Config {
	c := Config{
		Dir: dir, FsyncInterval: 50 * time.Millisecond,
		MemTableBytes: 4 << 20, NumMemTables: 2, BlockCacheBytes: 4 << 20, IndexCacheBytes: 2 << 20,
		CheckpointInterval: time.Second, MaintenanceInterval: 5 * time.Second,
		SealMinRecords: 1, DropMovedEvery: -1,
	}
	c.fillDefaults()
	return c
}

func (c *Config) fillDefaults() {
	if c.MaxFuture == 0 {
		c.MaxFuture = 24 * time.Hour
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.MemTableBytes == 0 {
		c.MemTableBytes = 16 << 20
	}
	if c.ValueLogFileBytes == 0 {
		c.ValueLogFileBytes = 256 << 20
	}
	if c.NumMemTables == 0 {
		c.NumMemTables = 2
	}
	if c.BlockCacheBytes == 0 {
		c.BlockCacheBytes = 32 << 20
	}
	if c.IndexCacheBytes == 0 {
		c.IndexCacheBytes = 16 << 20
	}
	if c.BlockBytes == 0 {
		c.BlockBytes = 64 << 10
	}
	if c.L0Tables == 0 {
		c.L0Tables = 16
	}
	if c.BaseLevelBytes == 0 {
		c.BaseLevelBytes = 64 << 20
	}
	if c.BaseTableBytes == 0 {
		c.BaseTableBytes = 1 << 20
	}
	if c.CompressionLevel == 0 {
		c.CompressionLevel = 1
	}
	if c.MaxBatchRecords == 0 {
		c.MaxBatchRecords = 4096
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = time.Minute
	}
	if c.MaxMappedBytes == 0 {
		c.MaxMappedBytes = 48 << 20
	}
	if c.DiskCheckInterval == 0 {
		c.DiskCheckInterval = time.Second
	}
	if c.SealBlockRecords == 0 {
		c.SealBlockRecords = 1024
	}
	if c.SealMinRecords == 0 {
		c.SealMinRecords = 64
	}
	if c.SealInterval == 0 {
		c.SealInterval = 15 * time.Second
	}
	if c.SealCaptureBytes == 0 {
		c.SealCaptureBytes = 64 << 20
	}
	if c.DropMovedEvery == 0 {
		c.DropMovedEvery = 5 * time.Minute
	}
	if c.freeBytes == nil {
		c.freeBytes = statfsFree
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// MemoryBudget is what the store needs in memory with these settings:
// memtables, the tables built from them (a flush or a compaction holds a
// table's blocks twice, compressed and not, in buffers that grow by
// doubling), the caches and the rest of the peer. The agent's default
// soft memory limit (--memory-limit auto) is this figure: 224 MiB with
// the defaults.
func (c Config) MemoryBudget() int64 {
	c.fillDefaults()
	return 4*int64(c.NumMemTables)*c.MemTableBytes + c.BlockCacheBytes + c.IndexCacheBytes + 48<<20
}

// minFreeDiskBytes is MinFreeDiskBytes with its default, which follows the
// memtable settings (so it is derived at Open, not in DefaultConfig).
func (c *Config) minFreeDiskBytes() int64 {
	if c.MinFreeDiskBytes != 0 {
		return c.MinFreeDiskBytes
	}
	return max(32<<20, 4*int64(c.NumMemTables)*c.MemTableBytes)
}

func (c *Config) validate() error {
	c.fillDefaults()
	switch {
	case c.Dir == "":
		return fmt.Errorf("index: Dir is required")
	case c.FsyncInterval < 0:
		return fmt.Errorf("index: FsyncInterval %v is negative (0 means sync every commit)", c.FsyncInterval)
	case c.Retention < time.Hour:
		return fmt.Errorf("index: Retention %v is shorter than one time window (1h)", c.Retention)
	case c.MemTableBytes < 1<<20:
		return fmt.Errorf("index: MemTableBytes %d is below 1 MiB", c.MemTableBytes)
	case c.NumMemTables < 1:
		return fmt.Errorf("index: NumMemTables %d must be at least 1", c.NumMemTables)
	case c.SealBlockRecords < 1 || c.SealBlockRecords > maxBlockRecords:
		return fmt.Errorf("index: SealBlockRecords %d is not within 1..%d", c.SealBlockRecords, maxBlockRecords)
	case c.SealMinRecords < 1:
		return fmt.Errorf("index: SealMinRecords %d must be at least 1", c.SealMinRecords)
	case c.MaxBatchRecords < 1:
		return fmt.Errorf("index: MaxBatchRecords %d must be at least 1", c.MaxBatchRecords)
	}
	return nil
}
