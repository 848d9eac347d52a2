package index

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// idAt is an ID of the given milliseconds with the given tag and sequence.
func idAt(ms int64, tag byte, seq uint32) record.ID {
	var id record.ID
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	id[6] = tag
	id[12], id[13], id[14], id[15] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	return id
}

// TestSortByIDOrdersAsCompare: records of one window given in key order
// (by slice, then partition), many sharing a millisecond, come out of the
// radix sort in record.Compare order without the whole-list fallback; a
// list that spans two windows takes the fallback and is sorted too.
func TestSortByIDOrdersAsCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	w := record.WindowOf(time.Now().Add(-3 * time.Hour).UnixMilli())
	for _, n := range []int{0, 1, 2, 3, 100, 5000} {
		var rs []scanned
		for i := range n {
			ms := w.Start() + rng.Int64N(record.WindowMillis)
			if i%3 == 0 && len(rs) > 0 {
				ms = rs[rng.IntN(len(rs))].id.Millis() // a millisecond already taken
			}
			rs = append(rs, scanned{idAt(ms, byte(rng.IntN(4)), rng.Uint32()), []byte{byte(i)}})
		}
		// in key order: slice, then partition, then ID
		slices.SortFunc(rs, func(a, b scanned) int {
			if c := bytes.Compare(recordKey(a.id), recordKey(b.id)); c != 0 {
				return c
			}
			return 0
		})
		want := slices.Clone(rs)
		slices.SortFunc(want, func(a, b scanned) int { return record.Compare(a.id, b.id) })
		got := make([]scanned, len(rs))
		if sortByID(rs, got) {
			t.Fatalf("%d records of one window took the fallback", n)
		}
		for i := range want {
			if got[i].id != want[i].id || !bytes.Equal(got[i].data, want[i].data) {
				t.Fatalf("%d records: at %d %x, want %x", n, i, got[i].id, want[i].id)
			}
		}
	}
	// two windows: the milliseconds in the window no longer order them
	rs := []scanned{{idAt(w.Start()+5, 0, 0), nil}, {idAt((w+1).Start()+1, 0, 0), nil}, {idAt(w.Start()+7, 0, 0), nil}}
	got := make([]scanned, len(rs))
	if !sortByID(rs, got) {
		t.Fatal("records of two windows did not take the fallback")
	}
	if !slices.IsSortedFunc(got, func(a, b scanned) int { return record.Compare(a.id, b.id) }) {
		t.Fatalf("records of two windows out of order: %v", got)
	}
}

// TestMergeSortedJoinsOrMerges: lists that follow each other come back as
// the array that holds them; interleaving ones are merged in ID order.
func TestMergeSortedJoinsOrMerges(t *testing.T) {
	w := record.WindowOf(time.Now().Add(-3 * time.Hour).UnixMilli())
	mk := func(ms ...int64) []scanned {
		var out []scanned
		for _, m := range ms {
			out = append(out, scanned{idAt(w.Start()+m, 1, 0), nil})
		}
		return out
	}
	check := func(lists [][]scanned, want []int64) {
		t.Helper()
		all := slices.Concat(lists...)
		got := mergeSorted(all, slices.Clone(lists))
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for i, m := range want {
			if got[i].id.Millis() != w.Start()+m {
				t.Fatalf("at %d: %d, want %d", i, got[i].id.Millis()-w.Start(), m)
			}
		}
	}
	check([][]scanned{mk(1, 2, 3), nil, mk(4, 9)}, []int64{1, 2, 3, 4, 9})
	check([][]scanned{mk(1, 5, 8), mk(2, 3, 9), mk(4)}, []int64{1, 2, 3, 4, 5, 8, 9})
	check([][]scanned{mk(4, 6), mk(1, 2)}, []int64{1, 2, 4, 6})
	check(nil, nil)
}

// TestSortedScanDataOutlivesTheNextScan: a sorted scan's records keep their
// bytes while they are passed, even when the callback runs a whole other
// sorted scan (which takes arenas from the same pool); every record passed
// carries exactly what was written.
func TestSortedScanDataOutlivesTheNextScan(t *testing.T) {
	db := openTest(t, t.TempDir())
	base := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	es := makeEntries(3000, base, 50*time.Minute, 3)
	es = append(es, makeEntries(3000, base.Add(-2*time.Hour), 50*time.Minute, 4)...)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	written := map[record.ID][]byte{}
	for _, e := range es {
		written[e.ID] = e.Data
	}
	inner := ScanOptions{FromMillis: base.Add(-2 * time.Hour).UnixMilli(), ToMillis: base.Add(-time.Hour).UnixMilli(), Workers: 2}
	outer := ScanOptions{FromMillis: base.UnixMilli(), ToMillis: base.Add(time.Hour).UnixMilli(), Workers: 2}
	if !sortedScan(outer, 3000) || !sortedScan(inner, 3000) {
		t.Fatal("the scans of this test are not sorted scans")
	}
	n := 0
	err := db.Scan(context.Background(), outer, func(id record.ID, data []byte) error {
		if n++; n%500 == 1 {
			m := 0
			if err := db.Scan(context.Background(), inner, func(record.ID, []byte) error { m++; return nil }); err != nil || m != 3000 {
				t.Fatalf("inner scan: %d records, %v", m, err)
			}
		}
		if !bytes.Equal(data, written[id]) {
			t.Fatalf("record %d (%x) passed %d bytes unlike the %d written", n, id, len(data), len(written[id]))
		}
		return nil
	})
	if err != nil || n != 3000 {
		t.Fatalf("outer scan: %d records, %v", n, err)
	}
}
