package antientropy

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/logmesh/logmesh/record"
)

// Messages of a round, in a compact binary form: a version byte, then the
// fields as uvarints, fixed-size roots, digests and IDs, and length-prefixed
// records. Every decoder bounds counts by the bytes left before allocating.

const msgVersion = 2

// ShortBytes is the length of a shortened window root.
const ShortBytes = 8

// Short keeps what a shortened comparison compares: the first 64 bits of a
// root, or a digest's count and first sum.
func Short(r Root) Root {
	var s Root
	copy(s[:ShortBytes], r[:ShortBytes])
	return s
}

// shortDigest keeps a digest's count and first sum.
func shortDigest(d record.Digest) record.Digest { return record.Digest{Count: d.Count, Sum0: d.Sum0} }

// ErrBadMessage is returned for bytes that are not a valid message.
var ErrBadMessage = errors.New("antientropy: malformed message")

// RootsRequest opens a round: one root per partition the initiator shares
// with the responder.
type RootsRequest struct {
	Cutoff record.Window
	// Full asks for whole window roots and digests in this round. Otherwise
	// they travel shortened to 64 bits (see Short), which keeps a round with
	// a few differences small; a partition that stays different without a
	// difference showing is then compared in full.
	Full  bool
	Roots []PartRoot
	// Vouch holds the partitions the initiator holds complete (see
	// Config.Vouches): a proof of equality with it makes the other side
	// complete too.
	Vouch PartSet
	// Own is the initiator's own retention cutoff (Cutoff is the one the
	// roots were computed at: the responder's, when the initiator asks again
	// at it). Nothing is proven between peers whose own cutoffs differ.
	Own record.Window
}

// PartSet is a set of partitions.
type PartSet [record.NumPartitions / 8]byte

// Has reports whether p is in the set.
func (s *PartSet) Has(p record.Partition) bool { return s[p/8]&(1<<(p%8)) != 0 }

// Add puts p in the set.
func (s *PartSet) Add(p record.Partition) { s[p/8] |= 1 << (p % 8) }

// PartRoot is one partition's root.
type PartRoot struct {
	P    record.Partition
	Root Root
}

// RootsReply lists the responder's window roots of the partitions whose
// roots differ.
type RootsReply struct {
	Cutoff record.Window
	Full   bool // window roots are whole, not shortened
	Differ []PartWindows
	// Vouch holds the partitions the responder holds complete.
	Vouch PartSet
}

// PartWindows is a partition's window roots.
type PartWindows struct {
	P       record.Partition
	Windows []WindowRoot
}

// BucketsRequest carries the initiator's bucket digests of the windows whose
// roots differ. Pull says whether the initiator wants the records only the
// responder holds (false when it is handing a partition over).
type BucketsRequest struct {
	Cutoff record.Window
	Pull   bool
	// Full: the digests are whole; otherwise they carry only Count and Sum0
	// and are compared on those.
	Full    bool
	Windows []WindowDigests
}

// WindowDigests is a partition's bucket digests in one window.
type WindowDigests struct {
	W       record.Window
	P       record.Partition
	Digests [record.BucketsPerPartition]record.Digest
}

// BucketRef names one bucket of one window.
type BucketRef struct {
	W record.Window
	B record.Bucket
}

// BucketIDs lists a bucket's IDs on the side that sends it.
type BucketIDs struct {
	Ref BucketRef
	IDs []record.ID
}

// BucketsReply resolves the differing buckets as far as the responder can:
// records only it holds (when asked to pull), buckets where the initiator
// holds exactly one record more (SendOne, with the digest difference that
// names it) or everything (SendAll: the responder's bucket is empty), and ID
// lists of buckets that differ by more. More says the reply was cut at the
// size limit: the round should be repeated.
type BucketsReply struct {
	// Differing counts the buckets that differ; Expected is a lower bound
	// of the records to move (the sum of the count differences).
	Differing int
	Expected  int
	Records   []Rec
	SendOne   []OneRef
	SendAll   []BucketRef
	IDLists   []BucketIDs
	More      bool
}

// OneRef is a bucket where the initiator holds one record the responder
// lacks: Diff is that record's digest.
type OneRef struct {
	Ref  BucketRef
	Diff record.Digest
}

// ExchangeRequest pushes records to the responder and asks for records (by
// ID) and ID lists (for buckets whose one-record difference the initiator
// could not resolve).
type ExchangeRequest struct {
	Records []Rec
	Want    []record.ID
	NeedIDs []BucketRef
}

// ExchangeReply carries the records and ID lists asked for.
type ExchangeReply struct {
	Records []Rec
	IDLists []BucketIDs
	More    bool
}

// --- encoding

type enc struct{ b []byte }

func (e *enc) u(x uint64)      { e.b = binary.AppendUvarint(e.b, x) }
func (e *enc) bytes(b []byte)  { e.u(uint64(len(b))); e.b = append(e.b, b...) }
func (e *enc) id(id record.ID) { e.b = append(e.b, id[:]...) }
func (e *enc) root(r Root)     { e.b = append(e.b, r[:]...) }
func (e *enc) digest(d record.Digest) {
	e.u(d.Count)
	e.b = binary.BigEndian.AppendUint64(e.b, d.Sum0)
	e.b = binary.BigEndian.AppendUint64(e.b, d.Sum1)
}
func (e *enc) flag(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *enc) ref(r BucketRef) { e.u(uint64(r.W)); e.u(uint64(r.B)) }
func (e *enc) recs(rs []Rec) {
	e.u(uint64(len(rs)))
	for _, r := range rs {
		e.id(r.ID)
		e.bytes(r.Data)
	}
}
func (e *enc) ids(ids []record.ID) {
	e.u(uint64(len(ids)))
	for _, id := range ids {
		e.id(id)
	}
}
func (e *enc) idLists(ls []BucketIDs) {
	e.u(uint64(len(ls)))
	for _, l := range ls {
		e.ref(l.Ref)
		e.ids(l.IDs)
	}
}
func (e *enc) refs(rs []BucketRef) {
	e.u(uint64(len(rs)))
	for _, r := range rs {
		e.ref(r)
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadMessage, what)
	}
}

func (d *dec) u() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a count of items each at least min bytes long.
func (d *dec) count(min int) int {
	n := d.u()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("count beyond the message")
		return 0
	}
	return int(n)
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *dec) id() (id record.ID) {
	copy(id[:], d.take(record.IDLen))
	return id
}

func (d *dec) root() (r Root) {
	copy(r[:], d.take(len(r)))
	return r
}

func (d *dec) digest() record.Digest {
	c := d.u()
	b := d.take(16)
	if d.err != nil {
		return record.Digest{}
	}
	return record.Digest{Count: c, Sum0: binary.BigEndian.Uint64(b), Sum1: binary.BigEndian.Uint64(b[8:])}
}

func (d *dec) flag() bool {
	b := d.take(1)
	return d.err == nil && b[0] != 0
}

func (d *dec) window() record.Window {
	w := d.u()
	if w > 1<<32-1 {
		d.fail("window out of range")
	}
	return record.Window(w)
}

func (d *dec) partition() record.Partition {
	p := d.u()
	if p >= record.NumPartitions {
		d.fail("partition out of range")
	}
	return record.Partition(p)
}

func (d *dec) ref() BucketRef {
	w := d.window()
	b := d.u()
	if b >= record.NumBuckets {
		d.fail("bucket out of range")
	}
	return BucketRef{W: w, B: record.Bucket(b)}
}

func (d *dec) recs() []Rec {
	n := d.count(record.IDLen + 1)
	out := make([]Rec, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.id()
		l := d.u()
		if l > uint64(len(d.b)) {
			d.fail("record beyond the message")
			break
		}
		out = append(out, Rec{ID: id, Data: d.take(int(l))})
	}
	return out
}

func (d *dec) ids() []record.ID {
	n := d.count(record.IDLen)
	out := make([]record.ID, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.id())
	}
	return out
}

func (d *dec) idLists() []BucketIDs {
	n := d.count(3)
	out := make([]BucketIDs, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, BucketIDs{Ref: d.ref(), IDs: d.ids()})
	}
	return out
}

func (d *dec) refs() []BucketRef {
	n := d.count(2)
	out := make([]BucketRef, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.ref())
	}
	return out
}

func (d *dec) start() {
	if v := d.take(1); d.err == nil && v[0] != msgVersion {
		d.fail(fmt.Sprintf("version %d", v[0]))
	}
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// MarshalBinary encodes the request.
func (m *RootsRequest) MarshalBinary() ([]byte, error) {
	e := enc{b: []byte{msgVersion}}
	e.u(uint64(m.Cutoff))
	e.flag(m.Full)
	e.u(uint64(len(m.Roots)))
	for _, r := range m.Roots {
		e.u(uint64(r.P))
		e.root(r.Root)
	}
	e.b = append(e.b, m.Vouch[:]...)
	e.u(uint64(m.Own))
	return e.b, nil
}

// UnmarshalBinary decodes the request.
func (m *RootsRequest) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	d.start()
	m.Cutoff = d.window()
	m.Full = d.flag()
	n := d.count(33)
	m.Roots = make([]PartRoot, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		m.Roots = append(m.Roots, PartRoot{P: d.partition(), Root: d.root()})
	}
	copy(m.Vouch[:], d.take(len(m.Vouch)))
	m.Own = d.window()
	return d.end()
}

// MarshalBinary encodes the reply.
func (m *RootsReply) MarshalBinary() ([]byte, error) {
	e := enc{b: []byte{msgVersion}}
	e.u(uint64(m.Cutoff))
	e.flag(m.Full)
	e.u(uint64(len(m.Differ)))
	for _, p := range m.Differ {
		e.u(uint64(p.P))
		e.u(uint64(len(p.Windows)))
		prev := record.Window(0)
		for _, w := range p.Windows { // windows ascend: send the gaps
			e.u(uint64(w.W - prev))
			prev = w.W
			if m.Full {
				e.root(w.Root)
			} else {
				e.b = append(e.b, w.Root[:ShortBytes]...)
			}
		}
	}
	e.b = append(e.b, m.Vouch[:]...)
	return e.b, nil
}

// UnmarshalBinary decodes the reply.
func (m *RootsReply) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	d.start()
	m.Cutoff = d.window()
	m.Full = d.flag()
	n := d.count(2)
	m.Differ = make([]PartWindows, 0, n)
	rootLen := ShortBytes
	if m.Full {
		rootLen = len(Root{})
	}
	for i := 0; i < n && d.err == nil; i++ {
		pw := PartWindows{P: d.partition()}
		k := d.count(1 + rootLen)
		prev := uint64(0)
		for j := 0; j < k && d.err == nil; j++ {
			w := prev + d.u()
			if w > 1<<32-1 || (j > 0 && w == prev) {
				d.fail("windows out of order")
				break
			}
			prev = w
			var r Root
			copy(r[:], d.take(rootLen))
			pw.Windows = append(pw.Windows, WindowRoot{W: record.Window(w), Root: r})
		}
		m.Differ = append(m.Differ, pw)
	}
	copy(m.Vouch[:], d.take(len(m.Vouch)))
	return d.end()
}

// MarshalBinary encodes the request.
func (m *BucketsRequest) MarshalBinary() ([]byte, error) {
	e := enc{b: []byte{msgVersion}}
	e.u(uint64(m.Cutoff))
	e.flag(m.Pull)
	e.flag(m.Full)
	e.u(uint64(len(m.Windows)))
	for _, w := range m.Windows {
		e.u(uint64(w.W))
		e.u(uint64(w.P))
		for _, dg := range w.Digests {
			if m.Full {
				e.digest(dg)
			} else {
				e.u(dg.Count)
				e.b = binary.BigEndian.AppendUint64(e.b, dg.Sum0)
			}
		}
	}
	return e.b, nil
}

// UnmarshalBinary decodes the request.
func (m *BucketsRequest) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	d.start()
	m.Cutoff = d.window()
	m.Pull = d.flag()
	m.Full = d.flag()
	n := d.count(2 + record.BucketsPerPartition*9)
	m.Windows = make([]WindowDigests, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		wd := WindowDigests{W: d.window(), P: d.partition()}
		for j := range wd.Digests {
			if m.Full {
				wd.Digests[j] = d.digest()
			} else {
				c := d.u()
				if b := d.take(8); d.err == nil {
					wd.Digests[j] = record.Digest{Count: c, Sum0: binary.BigEndian.Uint64(b)}
				}
			}
		}
		m.Windows = append(m.Windows, wd)
	}
	return d.end()
}

// MarshalBinary encodes the reply.
func (m *BucketsReply) MarshalBinary() ([]byte, error) {
	e := enc{b: []byte{msgVersion}}
	e.u(uint64(m.Differing))
	e.u(uint64(m.Expected))
	e.recs(m.Records)
	e.u(uint64(len(m.SendOne)))
	for _, o := range m.SendOne {
		e.ref(o.Ref)
		e.digest(o.Diff)
	}
	e.refs(m.SendAll)
	e.idLists(m.IDLists)
	e.flag(m.More)
	return e.b, nil
}

// UnmarshalBinary decodes the reply.
func (m *BucketsReply) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	d.start()
	m.Differing = int(min(d.u(), 1<<31))
	m.Expected = int(min(d.u(), 1<<31))
	m.Records = d.recs()
	n := d.count(19)
	for i := 0; i < n && d.err == nil; i++ {
		m.SendOne = append(m.SendOne, OneRef{Ref: d.ref(), Diff: d.digest()})
	}
	m.SendAll = d.refs()
	m.IDLists = d.idLists()
	m.More = d.flag()
	return d.end()
}

// MarshalBinary encodes the request.
func (m *ExchangeRequest) MarshalBinary() ([]byte, error) {
	e := enc{b: []byte{msgVersion}}
	e.recs(m.Records)
	e.ids(m.Want)
	e.refs(m.NeedIDs)
	return e.b, nil
}

// UnmarshalBinary decodes the request.
func (m *ExchangeRequest) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	d.start()
	m.Records = d.recs()
	m.Want = d.ids()
	m.NeedIDs = d.refs()
	return d.end()
}

// MarshalBinary encodes the reply.
func (m *ExchangeReply) MarshalBinary() ([]byte, error) {
	e := enc{b: []byte{msgVersion}}
	e.recs(m.Records)
	e.idLists(m.IDLists)
	e.flag(m.More)
	return e.b, nil
}

// UnmarshalBinary decodes the reply.
func (m *ExchangeReply) UnmarshalBinary(b []byte) error {
	d := dec{b: b}
	d.start()
	m.Records = d.recs()
	m.IDLists = d.idLists()
	m.More = d.flag()
	return d.end()
}
