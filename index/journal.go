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

const journalVersion = 1

func (e *JournalEntry) encode() []byte {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(e.IDs)*record.IDLen)
	b = append(b, journalVersion, byte(e.Op))
	b = binary.AppendUvarint(b, uint64(e.Local))
	b = binary.AppendUvarint(b, uint64(len(e.IDs)))
	for _, id := range e.IDs {
		b = append(b, id[:]...)
	}
	return b
}

func decodeJournal(seq uint64, b []byte) (JournalEntry, error) {
	e := JournalEntry{Seq: seq}
	if len(b) < 2 || b[0] != journalVersion || (Op(b[1]) != OpAdd && Op(b[1]) != OpRemove) {
		return e, fmt.Errorf("index: corrupt journal entry %d", seq)
	}
	e.Op = Op(b[1])
	b = b[2:]
	local, n1 := binary.Uvarint(b)
	if n1 <= 0 {
		return e, fmt.Errorf("index: corrupt journal entry %d", seq)
	}
	count, n2 := binary.Uvarint(b[n1:])
	b = b[n1+n2:]
	if n2 <= 0 || local > count || count != uint64(len(b)/record.IDLen) || len(b)%record.IDLen != 0 {
		return e, fmt.Errorf("index: corrupt journal entry %d", seq)
	}
	e.Local = int(local)
	e.IDs = make([]record.ID, count)
	for i := range e.IDs {
		copy(e.IDs[i][:], b[i*record.IDLen:])
	}
	return e, nil
}
