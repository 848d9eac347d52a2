package index

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWALSyncerSyncsEachFilledMemtableLogOnce: the logs of memtables that
// filled are synced (once each); the newest, active one is left to Badger,
// also past file id 99999 where names stop being zero-padded.
func TestWALSyncerSyncsEachFilledMemtableLogOnce(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var w walSyncer
	synced := func() map[string]bool {
		out := map[string]bool{}
		for k := range w.synced {
			out[filepath.Base(k)] = true
		}
		return out
	}
	touch("99998.mem")
	touch("99999.mem")
	if err := w.syncImmutable(dir); err != nil {
		t.Fatal(err)
	}
	if got := synced(); len(got) != 1 || !got["99998.mem"] {
		t.Fatalf("synced %v, want the filled 99998.mem only", got)
	}
	touch("100000.mem") // 99999 filled; 100000 is active
	if err := os.Remove(filepath.Join(dir, "99998.mem")); err != nil {
		t.Fatal(err)
	}
	if err := w.syncImmutable(dir); err != nil {
		t.Fatal(err)
	}
	if got := synced(); len(got) != 1 || !got["99999.mem"] {
		t.Fatalf("synced %v, want 99999.mem (flushed logs forgotten, the active 100000.mem left)", got)
	}
}
