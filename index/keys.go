package index

import (
	"encoding/binary"

	"github.com/logmesh/logmesh/record"
)

const (
	prefixRecord     = 'r'
	prefixJournal    = 'j'
	prefixCheckpoint = 'D'
	prefixMeta       = 'm'
)

const recordKeyLen = 1 + 4 + 1 + record.IDLen

func recordKey(id record.ID) []byte {
	return appendRecordKey(make([]byte, 0, recordKeyLen), id.Window(), id.Partition(), id)
}

func appendRecordKey(b []byte, w record.Window, p record.Partition, id record.ID) []byte {
	b = append(b, prefixRecord)
	b = binary.BigEndian.AppendUint32(b, uint32(w))
	b = append(b, byte(p))
	return append(b, id[:]...)
}

// partitionPrefix is the key prefix of one partition's records in one window.
func partitionPrefix(w record.Window, p record.Partition) []byte {
	b := make([]byte, 0, 6)
	b = append(b, prefixRecord)
	b = binary.BigEndian.AppendUint32(b, uint32(w))
	return append(b, byte(p))
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
	copy(id[:], k[6:])
	return id, true
}

func journalKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixJournal}, seq)
}

func checkpointKey(w record.Window) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixCheckpoint}, uint32(w))
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }
