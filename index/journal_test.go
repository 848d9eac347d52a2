package index

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

func TestJournalListsCommitsInOrderWithOrigin(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.KeepJournal = true })
	changes, stop := db.Changes()
	defer stop()
	ctx := context.Background()
	local := makeEntries(100, time.Now().Add(-time.Hour), time.Hour, 1)
	remote := makeEntries(50, time.Now().Add(-time.Hour), time.Hour, 2)
	r1, err := db.Write(ctx, local, OriginLocal)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notification after a commit")
	}
	r2, err := db.Write(ctx, remote, OriginRemote)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Seq == 0 || r2.Seq <= r1.Seq || db.Applied() < r2.Seq {
		t.Fatalf("sequences: first %d, second %d, applied %d", r1.Seq, r2.Seq, db.Applied())
	}
	es, err := db.ReadJournal(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var gotLocal, gotRemote int
	for _, e := range es {
		gotLocal += e.Local
		gotRemote += len(e.IDs) - e.Local
		if e.Seq > db.Applied() {
			t.Fatalf("journal returned unapplied entry %d", e.Seq)
		}
	}
	if gotLocal != 100 || gotRemote != 50 {
		t.Fatalf("journal lists %d local and %d remote IDs, want 100 and 50", gotLocal, gotRemote)
	}
	db.Maintain() // KeepJournal: nothing is pruned before a floor is set
	if es2, _ := db.ReadJournal(0, 100); len(es2) != len(es) {
		t.Fatalf("journal pruned without a floor: %d entries left of %d", len(es2), len(es))
	}
	db.SetJournalFloor(r2.Seq + 1)
	if err := db.writeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	db.Maintain()
	if es3, _ := db.ReadJournal(0, 100); len(es3) != 0 {
		t.Fatalf("journal below the floor and checkpoint not pruned: %d entries", len(es3))
	}
}

func TestDeleteRemovesRecordsAndTheirDigests(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	ctx := context.Background()
	es := makeEntries(300, time.Now().Add(-2*time.Hour), 2*time.Hour, 3)
	if _, err := db.Write(ctx, es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	var keep record.Digest
	for _, e := range es[100:] {
		keep.Add(e.ID)
	}
	ids := make([]record.ID, 100)
	for i := range ids {
		ids[i] = es[i].ID
	}
	ids = append(ids, record.NewGenerator(nil).Next()) // absent: ignored
	res, err := db.Delete(ctx, ids)
	if err != nil || res.Written != 100 {
		t.Fatalf("Delete = %+v, %v; want 100 removed", res, err)
	}
	if _, err := db.Get(es[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted record still there: %v", err)
	}
	if got := db.Digest(); got != keep {
		t.Fatalf("digest after delete %+v, want %+v", got, keep)
	}
	if n := len(scanIDs(t, db, ScanOptions{})); n != 200 {
		t.Fatalf("scan finds %d records after deleting 100 of 300", n)
	}
	// and the deletion is replayed from the journal after a crash
	crash(db)
	db2 := openTest(t, dir, func(c *Config) { c.CheckpointInterval = time.Hour })
	if got := db2.Digest(); got != keep {
		t.Fatalf("digest after reopen %+v, want %+v", got, keep)
	}
}

// crash stops db like a killed process would: no checkpoint, no clean close.
func crash(db *DB) {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.cancel()
		db.wg.Wait()
		db.bdb.Close()
	})
}

func TestDuplicatesAreRecognisedAcrossRestartsAndOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	ctx := context.Background()
	es := makeEntries(400, time.Now().Add(-time.Hour), time.Hour, 11) // each from its own generator
	g := record.NewGenerator(nil)
	seqIDs := make([]record.ID, 200) // one instance, increasing
	g.Fill(seqIDs)
	var inOrder []Entry
	for _, id := range seqIDs {
		r := &record.Record{ID: id, Message: "m"}
		inOrder = append(inOrder, Entry{ID: id, Data: r.AppendEncode(nil)})
	}
	// the newer half first, then the older half: the older ones are below
	// the instance's newest ID and must still be written
	if res, err := db.Write(ctx, inOrder[100:], OriginRemote); err != nil || res.Written != 100 {
		t.Fatalf("newer half: %+v %v", res, err)
	}
	if res, err := db.Write(ctx, inOrder[:100], OriginRemote); err != nil || res.Written != 100 {
		t.Fatalf("older half: %+v %v", res, err)
	}
	if _, err := db.Write(ctx, es, OriginRemote); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2 := openTest(t, dir)
	all := append(append([]Entry(nil), es...), inOrder...)
	res, err := db2.Write(ctx, all, OriginRemote)
	if err != nil || res.Written != 0 || res.Duplicates != len(all) {
		t.Fatalf("rewriting everything after a restart: %+v %v; want all duplicates", res, err)
	}
	if got := db2.Digest().Count; got != uint64(len(all)) {
		t.Fatalf("digest counts %d records, want %d", got, len(all))
	}
}

func TestWritesLargerThanOneBadgerTransaction(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.MemTableBytes = 1 << 20; c.MaxBatchRecords = 100000 })
	ctx := context.Background()
	for _, origin := range []Origin{OriginLocal, OriginRemote} {
		es := makeEntries(20000, time.Now().Add(-time.Hour), time.Hour, uint64(origin)+20)
		res, err := db.Write(ctx, es, origin)
		if err != nil || res.Written != len(es) {
			t.Fatalf("origin %d: one write of %d records: %+v, %v", origin, len(es), res, err)
		}
		ids := make([]record.ID, len(es))
		for i, e := range es {
			ids[i] = e.ID
		}
		if res, err := db.Delete(ctx, ids); err != nil || res.Written != len(ids) {
			t.Fatalf("origin %d: one delete of %d records: %+v, %v", origin, len(ids), res, err)
		}
	}
	if n := db.Digest().Count; n != 0 {
		t.Fatalf("%d records left after deleting everything", n)
	}
}
