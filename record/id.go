package record

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Placement constants. They are part of the cluster protocol: every peer must
// use the same values, so they are constants, not configuration.
const (
	// WindowMillis is the length of a time window: the unit of retention and of
	// the anti-entropy summaries.
	WindowMillis = int64(time.Hour / time.Millisecond)
	// BucketBits is the number of top hash bits that name a digest bucket.
	BucketBits = 12
	// NumBuckets is the number of digest buckets per time window.
	NumBuckets = 1 << BucketBits
	// PartitionBits is the number of top hash bits that name a partition.
	PartitionBits = 8
	// NumPartitions is the fixed number of partitions of the cluster.
	NumPartitions = 1 << PartitionBits
	// BucketsPerPartition is the length of a partition's run of buckets.
	BucketsPerPartition = NumBuckets / NumPartitions
)

// IDLen is the length of an ID in bytes.
const IDLen = 16

// ID identifies a record across the cluster. It is assigned once, by the peer
// that first receives the record:
//
//	bytes 0..5   milliseconds since the Unix epoch (big endian): sortable by receive time
//	bytes 6..11  a random instance tag chosen when the generator starts
//	bytes 12..15 a sequence number (big endian)
//
// Comparing two IDs as byte strings orders them by receive time.
type ID [IDLen]byte

// Window is the number of a time window (milliseconds / WindowMillis).
type Window uint32

// Bucket is a digest bucket: the top BucketBits of an ID's hash.
type Bucket uint16

// Partition is a partition number: the top PartitionBits of an ID's hash.
type Partition uint8

// Millis returns the receive time of the ID in milliseconds since the epoch.
func (id ID) Millis() int64 {
	var b [8]byte
	copy(b[2:], id[0:6])
	return int64(binary.BigEndian.Uint64(b[:]))
}

// Time returns the receive time carried by the ID.
func (id ID) Time() time.Time { return time.UnixMilli(id.Millis()).UTC() }

// Window returns the time window of the ID.
func (id ID) Window() Window { return WindowOf(id.Millis()) }

// WindowOf returns the window holding the given millisecond timestamp.
func WindowOf(ms int64) Window {
	if ms < 0 {
		return 0
	}
	return Window(ms / WindowMillis)
}

// Start returns the first millisecond of the window.
func (w Window) Start() int64 { return int64(w) * WindowMillis }

// End returns the first millisecond after the window.
func (w Window) End() int64 { return int64(w+1) * WindowMillis }

// Hash returns a well-mixed 64-bit hash of the ID. It is stable across
// processes, machines and versions: placement depends on it.
func (id ID) Hash() uint64 {
	a := binary.BigEndian.Uint64(id[0:8])
	b := binary.BigEndian.Uint64(id[8:16])
	return fmix64(fmix64(a^0x9e3779b97f4a7c15) ^ b)
}

// Hash2 returns a second 64-bit hash of the ID, independent of Hash, used
// together with Hash as a 128-bit element hash in digests.
func (id ID) Hash2() uint64 {
	a := binary.BigEndian.Uint64(id[0:8])
	b := binary.BigEndian.Uint64(id[8:16])
	return fmix64(fmix64(b^0xc2b2ae3d27d4eb4f) + a)
}

// Bucket returns the digest bucket of the ID.
func (id ID) Bucket() Bucket { return Bucket(id.Hash() >> (64 - BucketBits)) }

// Partition returns the partition of the ID.
func (id ID) Partition() Partition { return Partition(id.Hash() >> (64 - PartitionBits)) }

// Partition returns the partition a bucket belongs to.
func (b Bucket) Partition() Partition { return Partition(b >> (BucketBits - PartitionBits)) }

// Buckets returns the first bucket of the partition and the first bucket after it.
func (p Partition) Buckets() (first, end Bucket) {
	first = Bucket(p) << (BucketBits - PartitionBits)
	return first, first + BucketsPerPartition
}

// fmix64 is MurmurHash3's 64-bit finalizer: a bijection with full avalanche.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// idEncoding is base32 with an alphabet in ASCII order, so that the text form
// of IDs sorts like the IDs themselves.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// IDTextLen is the length of an ID's text form.
const IDTextLen = 26

// String returns the 26-character text form of the ID.
func (id ID) String() string { return idEncoding.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ErrBadID is returned for text that is not an ID.
var ErrBadID = errors.New("record: malformed ID")

// ParseID parses the text form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != IDTextLen {
		return id, fmt.Errorf("%w: %q has %d characters, want %d", ErrBadID, s, len(s), IDTextLen)
	}
	n, err := idEncoding.Decode(id[:], []byte(s))
	if err != nil || n != IDLen {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	if id.String() != s { // reject non-canonical trailing bits
		return id, fmt.Errorf("%w: %q is not canonical", ErrBadID, s)
	}
	return id, nil
}

// MinID returns the smallest ID with the given millisecond timestamp.
func MinID(ms int64) ID {
	var id ID
	putMillis(&id, ms)
	return id
}

// MaxID returns the largest ID with the given millisecond timestamp.
func MaxID(ms int64) ID {
	id := MinID(ms)
	for i := 6; i < IDLen; i++ {
		id[i] = 0xff
	}
	return id
}

func putMillis(id *ID, ms int64) {
	if ms < 0 {
		ms = 0
	}
	if ms > 1<<48-1 {
		ms = 1<<48 - 1
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ms))
	copy(id[0:6], b[2:8])
}

// Compare orders IDs (by receive time, then instance, then sequence).
func Compare(a, b ID) int { return bytes.Compare(a[:], b[:]) }
