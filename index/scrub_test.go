package index

import (
	"context"
	"slices"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// TestScrubFindsWhatTheDigestsCannotSee: a record lost at rest and one
// whose bytes were damaged are invisible to digests kept from the journal.
// A scrub makes the digests describe what is stored (so anti-entropy sees
// the loss) and deletes the damaged record (so it fetches a good copy).
func TestScrubFindsWhatTheDigestsCannotSee(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := makeEntries(500, time.Now().Add(-90*time.Minute), 90*time.Minute, 21)
	ctx := context.Background()
	if _, err := db.Write(ctx, es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	clean, err := db.Scrub(ctx, 0)
	if err != nil || clean.Buckets != 0 || len(clean.Undecodable) != 0 || clean.Records != 500 {
		t.Fatalf("scrub of a healthy store: %+v, %v", clean, err)
	}
	lost, damaged := es[7].ID, es[300].ID
	// behind the store's back: one record vanishes, one is overwritten with garbage
	err = db.updateRecords(func(txn *badger.Txn) error {
		if err := txn.Delete(recordKey(lost)); err != nil {
			return err
		}
		return txn.Set(recordKey(damaged), []byte{0xff, 0xfe, 0x01})
	})
	if err != nil {
		t.Fatal(err)
	}
	if db.Digest().Count != 500 {
		t.Fatal("the digests followed a change made behind the store's back: the test proves nothing")
	}
	res, err := db.Scrub(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Buckets != 1 || !slices.Equal(res.Undecodable, []record.ID{damaged}) {
		t.Fatalf("scrub found %d differing buckets and damaged %v; want 1 and [%s]", res.Buckets, res.Undecodable, damaged)
	}
	var want record.Digest
	for _, e := range es {
		if e.ID != lost && e.ID != damaged {
			want.Add(e.ID)
		}
	}
	if got := db.Digest(); got != want {
		t.Fatalf("after the scrub the digests count %d records, the store holds %d", got.Count, want.Count)
	}
	if again, _ := db.Scrub(ctx, 0); again.Buckets != 0 || len(again.Undecodable) != 0 {
		t.Fatalf("a second scrub still finds %+v", again)
	}
	if s := db.Stats(); s.Scrubs != 3 || s.ScrubBuckets != 1 || s.ScrubUndecodable != 1 {
		t.Fatalf("scrub counters %d/%d/%d", s.Scrubs, s.ScrubBuckets, s.ScrubUndecodable)
	}
}

// TestConcurrentDeletesOfTheSameRecordsKeepDigestsWhole: hand-over and hint
// deletion may delete the same records at once. Each record must leave the
// digests once: a second removal of a record already being removed would
// leave the digests one record short of the store for ever (a replica
// sending it back is then refused as a duplicate, round after round).
func TestConcurrentDeletesOfTheSameRecordsKeepDigestsWhole(t *testing.T) {
	db := openTest(t, t.TempDir())
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		es := makeEntries(50, time.Now().Add(-time.Minute), time.Minute, uint64(100+round))
		if _, err := db.Write(ctx, es, OriginLocal); err != nil {
			t.Fatal(err)
		}
		ids := make([]record.ID, len(es))
		for i, e := range es {
			ids[i] = e.ID
		}
		done := make(chan error, 3)
		for g := 0; g < 3; g++ {
			go func() { _, err := db.Delete(ctx, ids); done <- err }()
		}
		for g := 0; g < 3; g++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if got := db.Digest().Count; got != 0 {
			t.Fatalf("round %d: after deleting every record three times at once the digests count %d records", round, got)
		}
	}
}
