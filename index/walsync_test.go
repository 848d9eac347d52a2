package index

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWALSyncerSyncsActiveLogsEachTimeAndFilledOnesOnce: the newest
// memtable log and the newest value log (the ones Badger writes to) are
// synced on every call and older ones once, also past file id 99999 where
// names stop being zero-padded. Files that are not logs are left alone,
// deleted logs are forgotten, and without active only the filled logs are
// synced (Badger's Sync takes the active ones there).
func TestWALSyncerSyncsActiveLogsEachTimeAndFilledOnesOnce(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var calls []string
	w := walSyncer{syncFile: func(path string) error {
		if _, err := os.Stat(path); err != nil {
			return err
		}
		calls = append(calls, filepath.Base(path))
		return nil
	}}
	round := func(active bool, want ...string) {
		t.Helper()
		calls = nil
		if err := w.sync(dir, dir, active); err != nil {
			t.Fatal(err)
		}
		slices.Sort(calls)
		slices.Sort(want)
		if !slices.Equal(calls, want) {
			t.Fatalf("synced %v, want %v", calls, want)
		}
	}
	touch("99998.mem")
	touch("99999.mem")
	touch("000001.vlog")
	touch("000001.sst")
	touch("MANIFEST")
	round(true, "99998.mem", "99999.mem", "000001.vlog")
	round(true, "99999.mem", "000001.vlog") // the active logs only
	touch("100000.mem")                     // 99999 filled; 100000 is active
	touch("000002.vlog")
	if err := os.Remove(filepath.Join(dir, "99998.mem")); err != nil {
		t.Fatal(err)
	}
	round(false, "99999.mem", "000001.vlog") // filled ones only
	if w.synced[filepath.Join(dir, "99998.mem")] {
		t.Fatal("a deleted log is still remembered as synced")
	}
	round(true, "100000.mem", "000002.vlog")
	touch("100001.mem")
	// a log deleted between the listing and its sync is skipped, and synced
	// when it turns up again
	w.syncFile = func(path string) error {
		if filepath.Base(path) == "100000.mem" {
			return os.ErrNotExist
		}
		return nil
	}
	if err := w.sync(dir, dir, true); err != nil {
		t.Fatalf("a log deleted meanwhile: %v", err)
	}
	if w.synced[filepath.Join(dir, "100000.mem")] {
		t.Fatal("a log whose sync found it deleted is marked synced")
	}
}

// TestPeriodicSyncSkipsIdleTicks: under an fsync interval the first tick
// syncs, a store that takes no writes then stops syncing (an idle peer does
// not flush its disk ten times a second), and a write makes a following tick
// sync the active memtable log again, so the loss bound of the interval
// holds.
func TestPeriodicSyncSkipsIdleTicks(t *testing.T) {
	if !syncLogsByDescriptor {
		t.Skip("the periodic sync goes through Badger's DB.Sync on this system; the hook sees only filled logs")
	}
	const interval = 5 * time.Millisecond
	// A sync round begins with the active memtable log (a new store has
	// only that one), so the .mem calls count the rounds.
	var mu sync.Mutex
	var synced []string
	rounds := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, name := range synced {
			if strings.HasSuffix(name, ".mem") {
				n++
			}
		}
		return n
	}
	db := openTest(t, t.TempDir(), func(c *Config) {
		c.FsyncInterval = interval
		c.CheckpointInterval, c.MaintenanceInterval = time.Hour, time.Hour // nothing else writes
		c.syncFile = func(path string) error {
			mu.Lock()
			synced = append(synced, filepath.Base(path))
			mu.Unlock()
			return syncFileData(path)
		}
	})
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10s", what)
			}
			time.Sleep(interval)
		}
	}
	waitUntil("first sync", func() bool { return rounds() > 0 })
	time.Sleep(40 * interval) // the window observed: forty ticks with no writes
	if n := rounds(); n != 1 {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("an idle store ran %d sync rounds in 40 ticks after its first: %v", n-1, synced)
	}
	if _, err := db.Write(context.Background(), makeEntries(10, time.Now(), time.Second, 1), OriginLocal); err != nil {
		t.Fatal(err)
	}
	waitUntil("sync after a write", func() bool { return rounds() > 1 })
}
