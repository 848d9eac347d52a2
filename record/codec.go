package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
	"unsafe"
)

// encodingVersion is the first byte of every encoded record.
const encodingVersion = 1

// ErrCorrupt is returned for bytes that are not an encoded record.
var ErrCorrupt = errors.New("record: corrupt encoding")

// MaxFields bounds the extra fields of one record.
const MaxFields = 256

// string slots in encoding order
const (
	sHost = iota
	sApp
	sProcID
	sMsgID
	sSD
	sMsg
	sSource
	sPeer
	numStr
)

// EncodedSizeHint returns a size that usually holds r's encoding.
func (r *Record) EncodedSizeHint() int {
	n := 32 + len(r.Raw) + len(r.Source) + len(r.Peer)
	if len(r.Raw) == 0 {
		n += len(r.Hostname) + len(r.AppName) + len(r.ProcID) + len(r.MsgID) + len(r.StructuredData) + len(r.Message)
	}
	for _, f := range r.Fields {
		n += 4 + len(f.Key) + len(f.Value)
	}
	return n
}

// AppendEncode appends the compact binary encoding of r (without its ID, which
// is stored in the key) to dst.
//
// Layout (version 1):
//
//	version u8 | format u8 | transport u8 | reason u8 | pri u8 | flags uvarint
//	event-time delta from receive time, nanoseconds, zigzag varint
//	raw: uvarint length, bytes
//	8 strings (host app procid msgid sd msg source peer), each either
//	    uvarint(len<<1|0) bytes            a literal, or
//	    uvarint(len<<1|1) uvarint(offset)  a reference into raw
//	extra fields: uvarint count, then key and value as literals
func (r *Record) AppendEncode(dst []byte) []byte {
	dst = append(dst, encodingVersion, byte(r.Format), byte(r.Transport), byte(r.Reason),
		byte(r.Facility)<<3|byte(r.Severity&7))
	flags, delta := r.Flags, int64(0)
	if !r.EventTime.IsZero() {
		// Sub saturates instead of overflowing; an event time more than
		// 292 years from the receive time is not representable and is
		// treated as missing (the raw bytes still hold it as sent).
		d := r.EventTime.Sub(r.ID.Time())
		if d == math.MaxInt64 || d == math.MinInt64 {
			flags |= FlagNoEventTime
		} else {
			delta = int64(d)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(flags))
	dst = binary.AppendVarint(dst, delta)
	dst = binary.AppendUvarint(dst, uint64(len(r.Raw)))
	dst = append(dst, r.Raw...)
	// The header fields and MSG usually lie in Raw, in this order: each is
	// looked for from where the one before ended. Source and Peer are
	// stored as literals: they are not part of the message (a search for
	// them in Raw almost always fails, and cost the most).
	from := 0
	for _, s := range [...]string{r.Hostname, r.AppName, r.ProcID, r.MsgID, r.StructuredData, r.Message} {
		dst, from = appendStr(dst, s, r.Raw, from)
	}
	dst, _ = appendStr(dst, r.Source, nil, 0)
	dst, _ = appendStr(dst, r.Peer, nil, 0)
	dst = binary.AppendUvarint(dst, uint64(len(r.Fields)))
	for _, f := range r.Fields {
		dst, _ = appendStr(dst, f.Key, nil, 0)
		dst, _ = appendStr(dst, f.Value, nil, 0)
	}
	return dst
}

// appendStr appends s as a reference into raw where raw holds it, else as a
// literal. It looks in raw from `from` first, then in the part before it,
// and returns where the next string should be looked for.
func appendStr(dst []byte, s string, raw []byte, from int) ([]byte, int) {
	if len(s) >= 4 && len(raw) > 0 {
		// read-only view of s: no copy on the ingest hot path
		sb := unsafe.Slice(unsafe.StringData(s), len(s))
		off := bytes.Index(raw[from:], sb) // from <= len(raw): 0, or the end of a match
		if off >= 0 {
			off += from
		} else {
			off = bytes.Index(raw[:min(len(raw), from+len(s)-1)], sb)
		}
		if off >= 0 {
			dst = binary.AppendUvarint(dst, uint64(len(s))<<1|1)
			return binary.AppendUvarint(dst, uint64(off)), off + len(s)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(s))<<1)
	return append(dst, s...), from
}

// View gives access to an encoded record's fields without copying or
// allocating; the slices it returns alias the encoded bytes. A zero View is
// invalid; call Reset.
type View struct {
	Format    Format
	Transport Transport
	Reason    Reason
	Facility  Facility
	Severity  Severity
	Flags     Flags
	// EventDeltaNanos is the event time minus the receive time.
	EventDeltaNanos int64

	raw     []byte
	str     [numStr][]byte
	fields  []byte
	nfields int
}

// Reset parses data into v. It fails on bytes that are not a valid encoding,
// and never panics on any input.
func (v *View) Reset(data []byte) error {
	d := decoder{b: data}
	if ver := d.byte(); ver != encodingVersion {
		if d.err != nil {
			return d.err
		}
		return fmt.Errorf("%w: unknown version %d", ErrCorrupt, ver)
	}
	v.Format = Format(d.byte())
	v.Transport = Transport(d.byte())
	v.Reason = Reason(d.byte())
	pri := d.byte()
	v.Facility, v.Severity = Facility(pri>>3), Severity(pri&7)
	flags := d.uvarint()
	if flags > 0xffff {
		return fmt.Errorf("%w: flags out of range", ErrCorrupt)
	}
	v.Flags = Flags(flags)
	v.EventDeltaNanos = d.varint()
	v.raw = d.bytes(d.uvarint())
	for i := range v.str {
		v.str[i] = d.str(v.raw)
	}
	n := d.uvarint()
	if n > MaxFields {
		return fmt.Errorf("%w: %d extra fields", ErrCorrupt, n)
	}
	v.nfields = int(n)
	start := d.off
	for i := 0; i < v.nfields*2 && d.err == nil; i++ {
		d.str(nil)
	}
	if d.err != nil {
		return d.err
	}
	v.fields = data[start:d.off]
	if d.off != len(data) {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(data)-d.off)
	}
	return nil
}

// Raw returns the raw bytes.
func (v *View) Raw() []byte { return v.raw }

// Hostname returns the hostname.
func (v *View) Hostname() []byte { return v.str[sHost] }

// AppName returns the app-name.
func (v *View) AppName() []byte { return v.str[sApp] }

// ProcID returns the procid.
func (v *View) ProcID() []byte { return v.str[sProcID] }

// MsgID returns the msgid.
func (v *View) MsgID() []byte { return v.str[sMsgID] }

// StructuredData returns the structured data as sent.
func (v *View) StructuredData() []byte { return v.str[sSD] }

// Message returns the message text.
func (v *View) Message() []byte { return v.str[sMsg] }

// Source returns the sender address.
func (v *View) Source() []byte { return v.str[sSource] }

// Peer returns the receiving peer's name.
func (v *View) Peer() []byte { return v.str[sPeer] }

// NumFields returns the number of extra fields.
func (v *View) NumFields() int { return v.nfields }

// Field returns the value of an extra field.
func (v *View) Field(key string) ([]byte, bool) {
	d := decoder{b: v.fields}
	for i := 0; i < v.nfields; i++ {
		k, val := d.str(nil), d.str(nil)
		if string(k) == key {
			return val, true
		}
	}
	return nil, false
}

// EachField calls fn for every extra field in key order.
func (v *View) EachField(fn func(key, value []byte)) {
	d := decoder{b: v.fields}
	for i := 0; i < v.nfields; i++ {
		k, val := d.str(nil), d.str(nil)
		fn(k, val)
	}
}

// Decode decodes an encoded record and its ID into a Record whose strings and
// raw bytes are copies (they do not alias data).
func Decode(id ID, data []byte) (*Record, error) {
	var v View
	if err := v.Reset(data); err != nil {
		return nil, err
	}
	return v.Record(id), nil
}

// Record materialises the view as a Record with copied strings.
func (v *View) Record(id ID) *Record {
	r := &Record{
		ID:        id,
		Facility:  v.Facility,
		Severity:  v.Severity,
		Format:    v.Format,
		Transport: v.Transport,
		Flags:     v.Flags,
		Reason:    v.Reason,
		EventTime: time.Unix(0, id.Millis()*int64(time.Millisecond)+v.EventDeltaNanos).UTC(),
	}
	if len(v.raw) > 0 {
		r.Raw = bytes.Clone(v.raw)
	}
	r.Hostname = string(v.str[sHost])
	r.AppName = string(v.str[sApp])
	r.ProcID = string(v.str[sProcID])
	r.MsgID = string(v.str[sMsgID])
	r.StructuredData = string(v.str[sSD])
	r.Message = string(v.str[sMsg])
	r.Source = string(v.str[sSource])
	r.Peer = string(v.str[sPeer])
	if v.nfields > 0 {
		r.Fields = make([]Field, 0, v.nfields)
		v.EachField(func(k, val []byte) { r.Fields = append(r.Fields, Field{string(k), string(val)}) })
		sort.SliceStable(r.Fields, func(i, j int) bool { return r.Fields[i].Key < r.Fields[j].Key })
	}
	return r
}

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrCorrupt, what, d.off)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("length beyond end")
		return nil
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) str(raw []byte) []byte {
	tag := d.uvarint()
	if tag&1 == 0 {
		return d.bytes(tag >> 1)
	}
	n, off := tag>>1, d.uvarint()
	if d.err != nil {
		return nil
	}
	if off > uint64(len(raw)) || n > uint64(len(raw))-off {
		d.fail("reference beyond raw")
		return nil
	}
	return raw[off : off+n]
}

// RawSpan returns where the raw bytes lie in an encoded record: data[start:end]
// (empty for a record without raw bytes). It reads only the header, so it does
// not check the rest of the encoding (View.Reset does). A store that keeps the
// raw bytes of many records apart from the rest (a column) cuts an encoding
// there and splices it back with SpliceRaw.
func RawSpan(data []byte) (start, end int, err error) {
	d := decoder{b: data}
	if ver := d.byte(); ver != encodingVersion {
		if d.err != nil {
			return 0, 0, d.err
		}
		return 0, 0, fmt.Errorf("%w: unknown version %d", ErrCorrupt, ver)
	}
	d.off += 4 // format, transport, reason, pri
	if d.off > len(data) {
		d.fail("truncated")
		return 0, 0, d.err
	}
	d.uvarint() // flags
	d.varint()  // event-time delta
	n := d.uvarint()
	start = d.off
	d.bytes(n)
	if d.err != nil {
		return 0, 0, d.err
	}
	return start, d.off, nil
}

// SpliceRaw appends to dst the encoded record whose encoding without its raw
// bytes is rest (as cut at RawSpan) and whose raw bytes are taken from the
// front of raws. It returns dst and what remains of raws.
func SpliceRaw(dst, rest, raws []byte) ([]byte, []byte, error) {
	at, n, err := RestRaw(rest)
	if err != nil {
		return dst, raws, err
	}
	if n > len(raws) {
		return dst, raws, fmt.Errorf("%w: raw bytes beyond the column's end", ErrCorrupt)
	}
	dst = append(dst, rest[:at]...)
	dst = append(dst, raws[:n]...)
	return append(dst, rest[at:]...), raws[n:], nil
}

// RestRaw returns where, in rest (an encoding without its raw bytes, as cut
// at RawSpan), the raw bytes were cut out, and how many there were.
func RestRaw(rest []byte) (at, n int, err error) {
	d := decoder{b: rest}
	if ver := d.byte(); ver != encodingVersion {
		if d.err != nil {
			return 0, 0, d.err
		}
		return 0, 0, fmt.Errorf("%w: unknown version %d", ErrCorrupt, ver)
	}
	d.off += 4
	if d.off > len(rest) {
		d.fail("truncated")
		return 0, 0, d.err
	}
	d.uvarint()
	d.varint()
	u := d.uvarint()
	if d.err != nil {
		return 0, 0, d.err
	}
	if u > math.MaxInt32 {
		return 0, 0, fmt.Errorf("%w: raw length %d", ErrCorrupt, u)
	}
	return d.off, int(u), nil
}
