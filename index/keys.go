package index

import (
	"encoding/binary"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

const (
	prefixRecord     = 'r'
	prefixJournal    = 'j'
	prefixCheckpoint = 'D'
	prefixMeta       = 'm'
)

// SliceMillis is the length of a slice: the records of a window are kept in
// runs per slice, so new writes land only in the newest slice's key range and
// compaction never rewrites the older part of the current window (see
// package doc, "Key layout").
const SliceMillis = 60_000

// slicesPerWindow is the number of slices of a window.
const slicesPerWindow = int(record.WindowMillis / SliceMillis)

// formatVersion is the newest store format this code reads. Version 1 (no
// meta "format" key) had 'r' window(4) partition(1) id(16); version 2 puts
// the slice before the partition and gives the partition two bytes; version
// 3 is version 2 whose runs may hold blocks (seal.go), written with the
// first block, so that a logmesh that cannot read blocks refuses the store;
// version 4 is version 3 whose blocks markers name the slices that hold
// blocks, written with the first block this version seals, so that a logmesh
// that would seal without naming them (and leave a sealed slice unnamed)
// refuses the store. A version 3 store reads as version 4 whose markers name
// every slice. Version 5 is version 4 whose slices may be moved (moved.go),
// written with the first slice moved or block sealed, so that a logmesh that
// would not look in the moved space refuses the store. Version 6 is version 5
// whose blocks may be of layout 2 (block.go), written with the first block
// this version writes, so that a logmesh that reads only layout 1 refuses
// the store; blocks of layout 1 in it are still read.
const formatVersion = 6

// keyFormat is the format a store without blocks is marked with.
const keyFormat = 2

// recordKeyLen is the length of a record key: 'r' window(4) slice(1)
// partition(2) id(16).
const recordKeyLen = 1 + 4 + 1 + 2 + record.IDLen

// v1RecordKeyLen is the length of a record key of format version 1.
const v1RecordKeyLen = 1 + 4 + 1 + record.IDLen

// sliceOf returns the slice of the window holding ms.
func sliceOf(ms int64) uint8 {
	if ms < 0 {
		return 0
	}
	return uint8(ms % record.WindowMillis / SliceMillis)
}

// sliceStart is the first millisecond of slice s of window w.
func sliceStart(w record.Window, s uint8) int64 { return w.Start() + int64(s)*SliceMillis }

func recordKey(id record.ID) []byte {
	return appendRecordKey(make([]byte, 0, recordKeyLen), id)
}

func appendRecordKey(b []byte, id record.ID) []byte {
	return appendRunKey(b, id.Window(), sliceOf(id.Millis()), id.Partition(), id)
}

// recordKeyIn is the key of record id in a window whose moved slices are m.
func recordKeyIn(m moved, id record.ID) []byte {
	return appendRecordKeyIn(make([]byte, 0, recordKeyLen), m, id)
}

func appendRecordKeyIn(b []byte, m moved, id record.ID) []byte {
	return appendRunKey(b, id.Window(), m.at(sliceOf(id.Millis())), id.Partition(), id)
}

// idRunPrefixIn is the prefix of the run the record id belongs in, in a
// window whose moved slices are m.
func idRunPrefixIn(m moved, id record.ID) []byte {
	return runPrefix(id.Window(), m.at(sliceOf(id.Millis())), id.Partition())
}

// appendRunKey appends the key id would have in the run of partition p of
// slice s of window w (s: the slice byte, with movedSpace where it is moved); with a bound ID (record.MinID, MaxID) it is a seek
// position inside that run.
func appendRunKey(b []byte, w record.Window, s uint8, p record.Partition, id record.ID) []byte {
	b = appendSlicePrefix(b, w, s)
	b = binary.BigEndian.AppendUint16(b, uint16(p))
	return append(b, id[:]...)
}

// runPrefix is the key prefix of one partition's records in one slice.
func runPrefix(w record.Window, s uint8, p record.Partition) []byte {
	return binary.BigEndian.AppendUint16(slicePrefix(w, s), uint16(p))
}

// idRunPrefix is the key prefix of the run the record id belongs in: an
// iterator limited to it skips every table that holds nothing of the run.
func idRunPrefix(id record.ID) []byte {
	return runPrefix(id.Window(), sliceOf(id.Millis()), id.Partition())
}

// runOfKey is the run prefix of a record's or a block's key.
func runOfKey(k []byte) []byte { return k[:recordKeyLen-record.IDLen] }

// slicePrefix is the key prefix of every record of one slice of a window.
func slicePrefix(w record.Window, s uint8) []byte {
	return appendSlicePrefix(make([]byte, 0, 8), w, s)
}

func appendSlicePrefix(b []byte, w record.Window, s uint8) []byte {
	b = append(b, prefixRecord)
	b = binary.BigEndian.AppendUint32(b, uint32(w))
	return append(b, s)
}

// windowPrefix is the key prefix of every record of a window.
func windowPrefix(w record.Window) []byte {
	b := []byte{prefixRecord}
	return binary.BigEndian.AppendUint32(b, uint32(w))
}

func idFromRecordKey(k []byte) (record.ID, bool) {
	var id record.ID
	if len(k) != recordKeyLen || k[0] != prefixRecord {
		return id, false
	}
	copy(id[:], k[recordKeyLen-record.IDLen:])
	return id, true
}

// blockKeyLen is the length of a block's key: 'r' window(4) slice(1)
// partition(2) last(16) first(16). A block sits in its run at the place of
// its last record's key (a forward seek to any ID of its range finds it),
// and no record of its range is stored loose: a run reads in key order as
// its records in ID order.
const blockKeyLen = recordKeyLen + record.IDLen

// appendBlockKey appends the key of the block holding the records first..last
// of partition p in slice s of window w.
func appendBlockKey(b []byte, w record.Window, s uint8, p record.Partition, first, last record.ID) []byte {
	b = appendRunKey(b, w, s, p, last)
	return append(b, first[:]...)
}

// blockRange returns the first and last IDs of a block key, and false for any
// other key.
func blockRange(k []byte) (first, last record.ID, ok bool) {
	if len(k) != blockKeyLen || k[0] != prefixRecord {
		return first, last, false
	}
	copy(last[:], k[recordKeyLen-record.IDLen:recordKeyLen])
	copy(first[:], k[recordKeyLen:])
	return first, last, true
}

// lastIDOfKey returns the ID of a record key or the last ID of a block key.
func lastIDOfKey(k []byte) (record.ID, bool) {
	var id record.ID
	if (len(k) != recordKeyLen && len(k) != blockKeyLen) || k[0] != prefixRecord {
		return id, false
	}
	copy(id[:], k[recordKeyLen-record.IDLen:recordKeyLen])
	return id, true
}

// sliceOfKey returns the slice byte of a record key (at least 6 bytes).
func sliceOfKey(k []byte) uint8 { return k[5] }

// movedSpace, set in a slice byte, is the key space a slice is moved to
// when it is sealed (moved.go): slice s of a window keeps its records under
// slice byte s until the sealer has written them, as blocks, under
// s|movedSpace and switched readers and writers over; the records under s
// are then dropped whole, without a tombstone per record. Both spaces sort
// inside the window's prefix, before its markers.
const movedSpace = 0x40

// moved is a set of a window's slices (bit s for slice s) whose records
// are in the moved space.
type moved uint64

// at returns the slice byte under which slice s's records are kept.
func (m moved) at(s uint8) uint8 {
	if m&moved(sliceBit(s)) != 0 {
		return s | movedSpace
	}
	return s
}

// keyVisible reports whether k, a key of a record or block of a window
// whose moved slices are m, is where readers find that slice's records
// (and not a copy the sealer is writing, or loose records not yet dropped).
func (m moved) keyVisible(k []byte) bool {
	b := sliceOfKey(k)
	return b == m.at(b&^movedSpace)
}

func journalKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixJournal}, seq)
}

func checkpointKey(w record.Window) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixCheckpoint}, uint32(w))
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// recordWindows lists the windows that have record keys (with or without
// digests), one seek per window.
func recordWindows(txn *badger.Txn) []record.Window {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}, PrefetchValues: false})
	defer it.Close()
	var ws []record.Window
	for it.Rewind(); it.Valid(); {
		k := it.Item().Key()
		if len(k) < 5 {
			it.Next()
			continue
		}
		w := record.Window(binary.BigEndian.Uint32(k[1:]))
		ws = append(ws, w)
		it.Seek(windowPrefix(w + 1))
	}
	return ws
}
