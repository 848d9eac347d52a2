package bench

import (
	"testing"
	"time"

	"github.com/logmesh/logmesh/index"
)

// TestStoreWriteStoresEveryRecord: the store-only measurement writes every
// record it is given, split unevenly over its writers, and they are all in
// the store afterwards (a rate of writes that did not happen would be no
// figure).
func TestStoreWriteStoresEveryRecord(t *testing.T) {
	_, lines, _ := payloads(5003, 1, 7)
	dir := t.TempDir()
	if _, err := storeWrite(dir, encodeLines(lines), 4, 100, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cfg := index.DefaultConfig(dir)
	cfg.Logger = quietLogger()
	db, err := index.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Stats().Records; got != uint64(len(lines)) {
		t.Fatalf("store holds %d records after storeWrite, want %d", got, len(lines))
	}
}
