package index

import (
	"encoding/binary"
	"fmt"

	"github.com/logmesh/logmesh/record"
)

// Op says what a journal entry did.
type Op uint8

// Journal operations.
const (
	OpAdd    Op = 1
	OpRemove Op = 2
)

// JournalEntry is one commit's change: the IDs it added or removed. For
// additions, the first Local IDs were minted by this peer (its own ingest);
// the rest arrived from other peers (replication, repair).
type JournalEntry struct {
	Seq   uint64
	Op    Op
	Local int
	IDs   []record.ID
}

// Journal entry encodings. Version 1 stored every ID whole (16 bytes).
// Version 2, written since, stores an ID minted by the same generator as the
// one before it (the same instance tag, bytes 6..11) as the difference of
// its milliseconds and of its sequence number, usually 2 bytes: a local
// batch's IDs are consecutive. Both are read.
const (
	journalV1 = 1
	journalV2 = 2
)

func (e *JournalEntry) encode() []byte {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(e.IDs)*3)
	b = append(b, journalV2, byte(e.Op))
	b = binary.AppendUvarint(b, uint64(e.Local))
	b = binary.AppendUvarint(b, uint64(len(e.IDs)))
	var prev record.ID
	for i, id := range e.IDs {
		if i == 0 || [6]byte(id[6:12]) != [6]byte(prev[6:12]) {
			// 0, then the whole ID
			b = append(b, 0)
			b = append(b, id[:]...)
		} else {
			// 1 + zigzag(millisecond delta), then zigzag(sequence delta)
			b = binary.AppendUvarint(b, 1+zigzag(id.Millis()-prev.Millis()))
			b = binary.AppendUvarint(b, zigzag(int64(seqOf(id))-int64(seqOf(prev))))
		}
		prev = id
	}
	return b
}

func decodeJournal(seq uint64, b []byte) (JournalEntry, error) {
	e := JournalEntry{Seq: seq}
	corrupt := fmt.Errorf("index: corrupt journal entry %d", seq)
	// a first byte just past the known versions is a newer encoding (a
	// downgrade); anything further is corruption
	if len(b) > 0 && b[0] > journalV2 && b[0] < 16 {
		return e, fmt.Errorf("index: journal entry %d has encoding version %d, newer than this logmesh reads (%d): run the version that wrote it", seq, b[0], journalV2)
	}
	if len(b) < 2 || (b[0] != journalV1 && b[0] != journalV2) || (Op(b[1]) != OpAdd && Op(b[1]) != OpRemove) {
		return e, corrupt
	}
	version := b[0]
	e.Op = Op(b[1])
	b = b[2:]
	local, n1 := binary.Uvarint(b)
	if n1 <= 0 {
		return e, corrupt
	}
	count, n2 := binary.Uvarint(b[n1:])
	if n2 <= 0 || local > count {
		return e, corrupt
	}
	b = b[n1+n2:]
	if version == journalV1 {
		if count != uint64(len(b)/record.IDLen) || len(b)%record.IDLen != 0 {
			return e, corrupt
		}
		e.Local = int(local)
		e.IDs = make([]record.ID, count)
		for i := range e.IDs {
			copy(e.IDs[i][:], b[i*record.IDLen:])
		}
		return e, nil
	}
	if count > uint64(len(b))/2 { // every ID takes at least 2 bytes
		return e, corrupt
	}
	e.Local = int(local)
	e.IDs = make([]record.ID, count)
	for i := range e.IDs {
		c, n := binary.Uvarint(b)
		if n <= 0 {
			return e, corrupt
		}
		b = b[n:]
		if c == 0 {
			if len(b) < record.IDLen {
				return e, corrupt
			}
			copy(e.IDs[i][:], b)
			b = b[record.IDLen:]
			continue
		}
		if i == 0 {
			return e, corrupt
		}
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return e, corrupt
		}
		b = b[n:]
		prev := e.IDs[i-1]
		ms := prev.Millis() + unzigzag(c-1)
		sq := int64(seqOf(prev)) + unzigzag(d)
		if ms < 0 || ms >= 1<<48 || sq < 0 || sq > 1<<32-1 {
			return e, corrupt
		}
		id := prev
		var m [8]byte
		binary.BigEndian.PutUint64(m[:], uint64(ms))
		copy(id[0:6], m[2:])
		binary.BigEndian.PutUint32(id[12:16], uint32(sq))
		e.IDs[i] = id
	}
	if len(b) != 0 {
		return e, corrupt
	}
	return e, nil
}

func seqOf(id record.ID) uint32 { return binary.BigEndian.Uint32(id[12:16]) }

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }
