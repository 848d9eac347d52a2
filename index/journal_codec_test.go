package index

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// journalCases are entries whose IDs exercise every branch of the encoding:
// runs from one generator, interleaved instances, time and sequence going
// backwards, a sequence wrapping within a millisecond, the epoch and the
// largest millisecond.
func journalCases() []JournalEntry {
	rng := rand.New(rand.NewPCG(3, 4))
	at := time.UnixMilli(1_700_000_000_000)
	genA := record.NewGenerator(func() time.Time { return at })
	genB := record.NewGenerator(func() time.Time { return at.Add(time.Hour) })
	run := make([]record.ID, 1000)
	genA.Fill(run)

	mixed := make([]record.ID, 0, 300)
	for range 100 {
		mixed = append(mixed, genA.Next(), genB.Next(), genA.Next())
	}
	backwards := slices.Clone(run[:50])
	slices.Reverse(backwards)

	mk := func(ms int64, inst byte, seq uint32) record.ID {
		var id record.ID
		var m [8]byte
		binary.BigEndian.PutUint64(m[:], uint64(ms))
		copy(id[0:6], m[2:])
		for i := 6; i < 12; i++ {
			id[i] = inst
		}
		binary.BigEndian.PutUint32(id[12:], seq)
		return id
	}
	edges := []record.ID{mk(5, 1, 1<<32-1), mk(5, 1, 0), mk(6, 1, 0), mk(0, 1, 7), mk(1<<48-1, 1, 1<<32-1), mk(0, 1, 0), mk(0, 2, 0)}
	random := make([]record.ID, 64)
	for i := range random {
		for j := range random[i] {
			random[i][j] = byte(rng.IntN(256))
		}
	}
	return []JournalEntry{
		{Seq: 1, Op: OpAdd},
		{Seq: 2, Op: OpAdd, Local: 1, IDs: run[:1]},
		{Seq: 3, Op: OpAdd, Local: 1000, IDs: run},
		{Seq: 4, Op: OpAdd, Local: 100, IDs: mixed},
		{Seq: 5, Op: OpRemove, IDs: backwards},
		{Seq: 6, Op: OpAdd, Local: 3, IDs: edges},
		{Seq: 7, Op: OpAdd, IDs: random},
	}
}

// TestJournalEncodingRoundTrips: every entry decodes to itself, and a local
// batch from one generator takes 2 bytes per ID after the first instead of
// the 16 of version 1.
func TestJournalEncodingRoundTrips(t *testing.T) {
	for _, e := range journalCases() {
		b := e.encode()
		got, err := decodeJournal(e.Seq, b)
		if err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
		if got.Seq != e.Seq || got.Op != e.Op || got.Local != e.Local || !slices.Equal(got.IDs, e.IDs) {
			t.Fatalf("entry %d decodes to %+v, want %+v", e.Seq, got, e)
		}
		if e.Seq == 3 {
			// version and op, two 2-byte varints (1000), a 0 and the first
			// ID whole, then 2 bytes per ID
			if want := 2 + 2 + 2 + 1 + record.IDLen + 2*(len(e.IDs)-1); len(b) != want {
				t.Fatalf("a run of %d consecutive IDs encodes to %d bytes, want %d", len(e.IDs), len(b), want)
			}
		}
	}
}

// encodeV1 is the version 1 encoding, which stores written before version 2
// still hold.
func encodeV1(e JournalEntry) []byte {
	b := []byte{journalV1, byte(e.Op)}
	b = binary.AppendUvarint(b, uint64(e.Local))
	b = binary.AppendUvarint(b, uint64(len(e.IDs)))
	for _, id := range e.IDs {
		b = append(b, id[:]...)
	}
	return b
}

// TestJournalReadsVersion1: entries written by earlier versions still decode.
func TestJournalReadsVersion1(t *testing.T) {
	for _, e := range journalCases() {
		got, err := decodeJournal(e.Seq, encodeV1(e))
		if err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
		if got.Op != e.Op || got.Local != e.Local || !slices.Equal(got.IDs, e.IDs) {
			t.Fatalf("version 1 entry %d decodes to %+v, want %+v", e.Seq, got, e)
		}
	}
}

// TestJournalRefusesCorruptEntries: truncated, padded and out-of-range
// entries are errors, not wrong IDs.
func TestJournalRefusesCorruptEntries(t *testing.T) {
	e := journalCases()[3]
	b := e.encode()
	for _, bad := range [][]byte{
		nil, {journalV2}, {9, byte(OpAdd), 0, 0}, {journalV2, 7, 0, 0},
		b[:len(b)-1],                         // truncated
		append(slices.Clone(b), 0),           // trailing byte
		{journalV2, byte(OpAdd), 2, 1, 0},    // more local than IDs
		{journalV2, byte(OpAdd), 0, 1, 1, 0}, // a delta with no ID before it
		append([]byte{journalV2, byte(OpAdd), 0, 2, 0}, append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0)...), // millisecond below 0
		{journalV2, byte(OpAdd), 0, 0xff, 0xff, 0xff, 0xff, 0x0f},                                                                       // a count the bytes cannot hold
	} {
		if got, err := decodeJournal(1, bad); err == nil {
			t.Fatalf("decodeJournal(%x) = %+v, want an error", bad, got)
		}
	}
}

// TestJournalNamesANewerVersion: an entry of a version this code does not
// know says so (a downgrade), instead of calling itself corrupt.
func TestJournalNamesANewerVersion(t *testing.T) {
	_, err := decodeJournal(9, []byte{journalV2 + 1, byte(OpAdd), 0, 0})
	if err == nil || !strings.Contains(err.Error(), "newer than this logmesh reads") {
		t.Fatalf("decoding a version %d entry: %v, want an error naming a newer version", journalV2+1, err)
	}
}

// FuzzDecodeJournal: any bytes decode to an error or to an entry that
// encodes and decodes back to itself; nothing panics or allocates past what
// the input can hold.
func FuzzDecodeJournal(f *testing.F) {
	for _, e := range journalCases() {
		f.Add(e.encode())
		f.Add(encodeV1(e))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeJournal(1, b)
		if err != nil {
			return
		}
		if len(e.IDs) > len(b) {
			t.Fatalf("%d IDs from %d bytes", len(e.IDs), len(b))
		}
		again, err := decodeJournal(1, e.encode())
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if again.Op != e.Op || again.Local != e.Local || !slices.Equal(again.IDs, e.IDs) {
			t.Fatalf("round trip changed the entry: %+v became %+v", e, again)
		}
	})
}
