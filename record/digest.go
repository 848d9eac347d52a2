package record

import "encoding/binary"

// Digest summarises a set of IDs: their count and the sums (mod 2^64) of
// their two 64-bit hashes. It is order-independent and incremental: adding
// the IDs of a set in any order gives the same digest, and removing an ID
// undoes adding it. Because records are immutable and identified by ID, two
// replicas hold the same set of records exactly when their digests agree
// (up to a 2^-128 chance of a collision).
//
// Equal-count digests that differ by a single element reveal that element's
// hashes (Minus), which lets reconciliation name a lone missing record
// without listing IDs.
type Digest struct {
	Count uint64
	Sum0  uint64
	Sum1  uint64
}

// DigestLen is the length of a digest's binary form.
const DigestLen = 24

// Add adds an ID to the digest.
func (d *Digest) Add(id ID) {
	d.Count++
	d.Sum0 += id.Hash()
	d.Sum1 += id.Hash2()
}

// Remove removes an ID that was added before.
func (d *Digest) Remove(id ID) {
	d.Count--
	d.Sum0 -= id.Hash()
	d.Sum1 -= id.Hash2()
}

// Merge adds every element of o to d.
func (d *Digest) Merge(o Digest) {
	d.Count += o.Count
	d.Sum0 += o.Sum0
	d.Sum1 += o.Sum1
}

// Minus returns d with the elements of o removed (o must be a subset of d
// for the result to describe a set).
func (d Digest) Minus(o Digest) Digest {
	return Digest{Count: d.Count - o.Count, Sum0: d.Sum0 - o.Sum0, Sum1: d.Sum1 - o.Sum1}
}

// IsZero reports whether the digest describes the empty set.
func (d Digest) IsZero() bool { return d == Digest{} }

// Matches reports whether a one-element digest is the digest of id.
func (d Digest) Matches(id ID) bool {
	return d.Count == 1 && d.Sum0 == id.Hash() && d.Sum1 == id.Hash2()
}

// AppendBinary appends the 24-byte big-endian form of d.
func (d Digest) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, d.Count)
	b = binary.BigEndian.AppendUint64(b, d.Sum0)
	return binary.BigEndian.AppendUint64(b, d.Sum1)
}

// DigestFromBinary reads the 24-byte form written by AppendBinary.
func DigestFromBinary(b []byte) (Digest, bool) {
	if len(b) < DigestLen {
		return Digest{}, false
	}
	return Digest{
		Count: binary.BigEndian.Uint64(b),
		Sum0:  binary.BigEndian.Uint64(b[8:]),
		Sum1:  binary.BigEndian.Uint64(b[16:]),
	}, true
}
