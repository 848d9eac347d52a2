package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/logmesh/logmesh/record"
)

// fillTables writes about 12 MiB of records, enough for the 4 MiB memtables
// of TestConfig to be flushed into tables, and waits until some are.
func fillTables(t *testing.T, db *DB) {
	t.Helper()
	g := record.NewGenerator(nil)
	pad := strings.Repeat("payload ", 24)
	for b := 0; b < 12; b++ {
		es := make([]Entry, 4096)
		for i := range es {
			r := &record.Record{ID: g.Next(), Hostname: "host", AppName: "app",
				Message: fmt.Sprintf("%s%d %d", pad, b, i)}
			es[i] = Entry{ID: r.ID, Data: r.AppendEncode(nil)}
		}
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "a memtable flushed into a table", func() bool {
		for _, l := range db.Levels() {
			if l.Tables > 0 {
				return true
			}
		}
		return false
	})
}

// waitFor is testutil.WaitFor, which this package cannot import (testutil
// imports index).
func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Badger's table-builder pool is reached through an unexported field; a
// Badger upgrade that moves it must fail here, not silently bring back the
// memory it held.
func TestBuilderPoolIsReachable(t *testing.T) {
	db := openTest(t, t.TempDir())
	if builderPool(db.bdb) == nil {
		t.Fatal("Badger's table-builder allocator pool is not where builderPool looks (field allocPool of badger.DB)")
	}
}

func TestDrainBuilderPoolReleasesIdleAllocators(t *testing.T) {
	p := z.NewAllocatorPool(builderPoolCap)
	defer p.Release()
	for range 3 {
		a := z.NewAllocator(4<<20, "test")
		a.Allocate(3 << 20)
		p.Return(a)
	}
	drainBuilderPool(p)
	a := p.Get(0, "test")
	defer a.Release()
	if a.Allocated() >= 4<<20 {
		t.Fatalf("after the drain the pool still hands out an allocator of %d bytes", a.Allocated())
	}
}

// An allocator left in the pool of an open DB is released by the DB within
// a few drain periods. Without the drain loop the pool would keep it: its own
// release needs two seconds without any Get, and this test keeps asking.
func TestDBReleasesIdleBuilderAllocators(t *testing.T) {
	db := openTest(t, t.TempDir())
	p := builderPool(db.bdb)
	if p == nil {
		t.Fatal("no builder pool")
	}
	big := z.NewAllocator(16<<20, "test")
	big.Allocate(15 << 20)
	p.Return(big)
	waitFor(t, 10*builderPoolDrainEvery, "release of the idle 16 MiB allocator", func() bool {
		a := p.Get(0, "test")
		if a.Allocated() >= 16<<20 {
			p.Return(a) // still pooled: put it back for the DB to release
			return false
		}
		a.Release()
		return true
	})
}

// tablesResident sums the resident memory of the table files of dir mapped
// in this process.
func tablesResident(t *testing.T, dir string) int64 {
	t.Helper()
	maps, err := tableMappings(mapsPrefix(dir))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, m := range maps {
		total += int64(m.rss)
	}
	return total
}

// A store over its mapped-memory budget pages its tables out; one with the
// budget off keeps them resident, as Badger leaves them.
func TestMappedTablesArePagedOutOverBudget(t *testing.T) {
	if !pageOutSupported {
		t.Skip("paging out mapped tables is Linux only")
	}
	keep := openTest(t, t.TempDir(), func(c *Config) { c.MaxMappedBytes = -1 })
	fillTables(t, keep)
	keepDir := keep.cfg.Dir + "/badger"
	if r := tablesResident(t, keepDir); r < 256<<10 {
		t.Fatalf("with the budget off, the tables hold only %d bytes resident: the test cannot tell paging out from nothing", r)
	}

	db := openTest(t, t.TempDir(), func(c *Config) { c.MaxMappedBytes = 1 }) // always over
	fillTables(t, db)
	dir := db.cfg.Dir + "/badger"
	waitFor(t, 10*time.Second, "page-out of the mapped tables", func() bool {
		return db.Stats().PageOuts > 0 && tablesResident(t, dir) < 64<<10
	})
	if s := db.Stats(); s.PagedOutTables == 0 {
		t.Fatalf("page-outs %d advised no table", s.PageOuts)
	}
	// the tables still read: paging out dropped copies, not data
	n := 0
	if err := db.Scan(context.Background(), ScanOptions{}, func(record.ID, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 12*4096 {
		t.Fatalf("scan after page-out read %d records, want %d", n, 12*4096)
	}
	if r := tablesResident(t, keepDir); r < 256<<10 {
		t.Fatalf("the other store's tables were paged out too (%d bytes resident)", r)
	}
}

func TestMemoryBudgetFollowsTheStoreSettings(t *testing.T) {
	if got := DefaultConfig(t.TempDir()).MemoryBudget(); got != 224<<20 {
		t.Fatalf("default memory budget %d MiB, want 224 (the documented default --memory-limit)", got>>20)
	}
	c := Config{Dir: "x", MemTableBytes: 64 << 20, NumMemTables: 3}
	if got, want := c.MemoryBudget(), int64(4*3*64+32+16+48)<<20; got != want {
		t.Fatalf("budget %d, want %d", got, want)
	}
}

// A store that keeps record bodies in Badger's value log (Config.ValueThreshold)
// reads as one that keeps them in the tree, before and after sealing and after
// a reopen; its value-log files are paged out over the mapped-memory budget
// like the tables, and read afterwards.
func TestValueLogStoreReadsAsTheTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	es := makeSealEntries(rng)
	tree := openTest(t, t.TempDir())
	if _, err := tree.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	want := readEverything(t, tree, es, 5)

	dir := t.TempDir()
	vlogCfg := func(c *Config) { c.ValueThreshold, c.MaxMappedBytes = 1, 1 } // every value with a byte
	db := openTest(t, dir, vlogCfg)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	vlog := int64(0) // the value log's allocated bytes (its files are sparse)
	matches, _ := filepath.Glob(filepath.Join(dir, "badger", "*.vlog"))
	for _, m := range matches {
		var st syscall.Stat_t
		if err := syscall.Stat(m, &st); err != nil {
			t.Fatal(err)
		}
		vlog += st.Blocks * 512
	}
	raw := int64(0)
	for _, e := range es {
		raw += int64(len(e.Data))
	}
	if vlog < raw {
		t.Fatalf("the value log holds %d bytes of %d bytes of records: the bodies stayed in the tree", vlog, raw)
	}
	compareReads(t, "bodies in the value log", want, readEverything(t, db, es, 5))
	if pageOutSupported {
		waitFor(t, 10*time.Second, "page-out of the value log", func() bool {
			maps, err := tableMappings(mapsPrefix(dir + "/badger"))
			if err != nil {
				t.Fatal(err)
			}
			seen, resident := false, uint64(0)
			for _, m := range maps {
				if m.vlog {
					seen, resident = true, resident+m.rss
				}
			}
			return seen && resident < 64<<10 && db.Stats().PageOuts > 0
		})
		compareReads(t, "after the value log was paged out", want, readEverything(t, db, es, 5))
	}
	for _, w := range db.AllWindows() {
		if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
			t.Fatal(err)
		}
	}
	if db.Stats().RecordsSealed == 0 {
		t.Fatal("nothing was sealed")
	}
	compareReads(t, "sealed, bodies in the value log", want, readEverything(t, db, es, 5))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, vlogCfg)
	compareReads(t, "reopened", want, readEverything(t, db, es, 5))
}

// TestUncompressedTablesReadAsCompressed writes the same records to a store
// whose tables are not compressed (--table-compression none) and reads
// them back through every reader, as written, sealed and after a reopen;
// its tables take at least the records' bytes.
func TestUncompressedTablesReadAsCompressed(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	es := makeSealEntries(rng)
	tree := openTest(t, t.TempDir())
	if _, err := tree.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	want := readEverything(t, tree, es, 5)

	dir := t.TempDir()
	plain := func(c *Config) { c.UncompressedTables = true }
	db := openTest(t, dir, plain)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "uncompressed tables", want, readEverything(t, db, es, 5))
	if err := db.Close(); err != nil { // flushes the memtable into a table
		t.Fatal(err)
	}
	var tables, raw int64
	matches, _ := filepath.Glob(filepath.Join(dir, "badger", "*.sst"))
	for _, m := range matches {
		info, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		tables += info.Size()
	}
	for _, e := range es {
		raw += int64(len(e.Data))
	}
	if tables < raw {
		t.Fatalf("the tables take %d bytes for %d bytes of records: they were compressed", tables, raw)
	}
	db = openTest(t, dir, plain)
	compareReads(t, "reopened", want, readEverything(t, db, es, 5))
	for _, w := range db.AllWindows() {
		if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
			t.Fatal(err)
		}
	}
	if db.Stats().RecordsSealed == 0 {
		t.Fatal("nothing was sealed")
	}
	compareReads(t, "sealed", want, readEverything(t, db, es, 5))
	// each table says how it was compressed: a store reads its tables
	// whatever the option says now
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	compareReads(t, "reopened with compressed tables", want, readEverything(t, db, es, 5))
}
