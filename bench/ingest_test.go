package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
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

// TestFloorIngestStoresEveryLine: the floor measurement counts as stored only
// what reached Badger, and every line sent over its connections is there
// afterwards, as a record logmesh can decode (a ceiling measured on lines
// that were dropped or left unparsed would be no ceiling).
func TestFloorIngestStoresEveryLine(t *testing.T) {
	const n = 4001
	streams, _, _ := payloads(n, 4, 11)
	dir := t.TempDir()
	if _, err := floorIngest(context.Background(), dir, streams, n); err != nil {
		t.Fatal(err)
	}
	got := baselineRecords(t, dir, func(id record.ID, data []byte) error {
		r, err := record.Decode(id, data)
		if err != nil {
			return err
		}
		if r.Malformed() || r.AppName == "" || r.Message == "" {
			return fmt.Errorf("record %s is not a parsed RFC 5424 line: %+v", id, r)
		}
		return nil
	})
	if got != n {
		t.Fatalf("bare Badger holds %d records after floorIngest, want %d", got, n)
	}
}

// TestDurableWriteStoresEveryRecord: the durable baseline writes every
// record, the last short transaction too.
func TestDurableWriteStoresEveryRecord(t *testing.T) {
	_, lines, _ := payloads(2500, 1, 5)
	dir := t.TempDir()
	if _, err := durableWrite(dir, encodeLines(lines), 1000); err != nil {
		t.Fatal(err)
	}
	if got := baselineRecords(t, dir, nil); got != len(lines) {
		t.Fatalf("durable baseline holds %d records, want %d", got, len(lines))
	}
}

// baselineRecords opens the bare Badger in dir, calls check (if not nil) on
// every record in it, failing the test on its error, and returns how many
// there are.
func baselineRecords(t *testing.T, dir string, check func(id record.ID, data []byte) error) int {
	t.Helper()
	base, err := index.OpenBaseline(index.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	n := 0
	err = base.Each(func(id record.ID, data []byte) error {
		n++
		if check == nil {
			return nil
		}
		return check(id, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
