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

	// MemTableBytes is the size of one Badger memtable. Larger memtables mean
	// fewer flushes (faster ingestion) and more memory: up to NumMemTables of
	// them are held. Default 32 MiB.
	MemTableBytes int64
	// NumMemTables bounds memtables held in memory (default 3).
	NumMemTables int
	// BlockCacheBytes is the cache of decompressed table blocks (default 32 MiB).
	BlockCacheBytes int64
	// IndexCacheBytes is the cache of table indexes and bloom filters (default 16 MiB).
	IndexCacheBytes int64
	// BlockBytes is the size of a table block before compression; larger
	// blocks compress better and make point lookups read more (default 16 KiB).
	BlockBytes int

	// MaxBatchRecords bounds the records of one group commit (default 4096).
	MaxBatchRecords int
	// CheckpointInterval is how often digests are checkpointed; it bounds the
	// journal replayed on open (default 10s).
	CheckpointInterval time.Duration
	// MaintenanceInterval is how often retention, journal pruning and
	// value-log garbage collection run (default 1m).
	MaintenanceInterval time.Duration

	// Logger receives the DB's own logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock used for retention (default time.Now).
	Now func() time.Time
}

// DefaultConfig returns the production defaults for dir.
func DefaultConfig(dir string) Config {
	c := Config{Dir: dir}
	c.fillDefaults()
	return c
}

// TestConfig returns a configuration sized for many DBs in one process.
func TestConfig(dir string) Config {
	c := Config{
		Dir: dir, FsyncInterval: 50 * time.Millisecond,
		MemTableBytes: 4 << 20, NumMemTables: 2, BlockCacheBytes: 4 << 20, IndexCacheBytes: 2 << 20,
		CheckpointInterval: time.Second, MaintenanceInterval: 5 * time.Second,
	}
	c.fillDefaults()
	return c
}

func (c *Config) fillDefaults() {
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.MemTableBytes == 0 {
		c.MemTableBytes = 32 << 20
	}
	if c.NumMemTables == 0 {
		c.NumMemTables = 3
	}
	if c.BlockCacheBytes == 0 {
		c.BlockCacheBytes = 32 << 20
	}
	if c.IndexCacheBytes == 0 {
		c.IndexCacheBytes = 16 << 20
	}
	if c.BlockBytes == 0 {
		c.BlockBytes = 16 << 10
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
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
	case c.MaxBatchRecords < 1:
		return fmt.Errorf("index: MaxBatchRecords %d must be at least 1", c.MaxBatchRecords)
	}
	return nil
}
