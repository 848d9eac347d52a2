package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/logmesh/logmesh/record"
)

// A block holds many records of one partition as a single value: their IDs,
// their encodings without the raw bytes, and the raw bytes, each as a column,
// compressed together, with a filter of the words in them ahead of the
// compressed part. It is the unit sealed data is to be stored in (one Badger
// entry per block rather than per record: fewer keys to compact, better
// compression, and word queries that skip blocks whose filter rules the word
// out). The sealer writes them (seal.go). BenchmarkBlockBytesPerLine shows
// a block needs a few thousand records to beat the store by half, more than
// a minute slice of one partition holds at ordinary rates
// (docs/architecture.md).
//
// Layout (version 1):
//
//	magic u8 (0xB1, never the first byte of an encoded record)
//	count uvarint                      records, 1..maxBlockRecords, IDs strictly increasing
//	filter words uvarint, then words × 8 bytes (little endian)   a Bloom filter of the words
//	columns length uvarint             the decompressed size, at most maxBlockBytes
//	zstd frame of the columns:
//	    tags: uvarint n, n × 6 bytes    the distinct instance tags of the IDs
//	    IDs: per record uvarint millisecond delta from the one before (the
//	         first from 0), uvarint tag index, uvarint sequence
//	    rest: per record uvarint length, the encoding without its raw bytes
//	    raws: the raw bytes of every record, one after the other
//
// The filter holds every word (record.EachWord) of each record's message and
// of its raw line, taken apart (a word query, record.ContainsWord, looks in
// those two), so a word query can ask it for each word of its term: a false
// answer means no record of the block has it; a true one means maybe (about
// 1% of absent words at blockBitsPerWord bits per distinct word). Words are
// taken from the decoded strings, never from the encoding, whose length
// bytes can be letters.
const blockMagic = 0xB1

// maxBlockRecords bounds the records of one block (and what a decoder
// allocates for a hostile count).
const maxBlockRecords = 1 << 16

// maxBlockBytes bounds a block's decompressed columns.
const maxBlockBytes = 64 << 20

const (
	blockBitsPerWord = 10
	blockHashes      = 7
)

// ErrBadBlock is returned for bytes that are not an encoded block.
var ErrBadBlock = errors.New("index: corrupt block")

// blockRecord is one record in a block.
type blockRecord struct {
	ID   record.ID
	Data []byte // the encoded record (record.AppendEncode)
}

var (
	blockEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	blockDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlockBytes),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// appendBlock appends the block of recs (sorted by ID, IDs unique) to dst.
func appendBlock(dst []byte, recs []blockRecord) ([]byte, error) {
	if len(recs) == 0 || len(recs) > maxBlockRecords {
		return dst, fmt.Errorf("index: a block holds 1 to %d records, not %d", maxBlockRecords, len(recs))
	}
	var tags [][6]byte
	tagIdx := map[[6]byte]int{}
	words := wordSets.Get().(*wordSet)
	defer wordSets.Put(words)
	words.reset()
	size := 0
	for _, r := range recs {
		size += len(r.Data)
	}
	// the columns' sizes are known within a few bytes a record: no growing;
	// they are scratch, kept between blocks (the sealer cuts a hundred a
	// second at 100 000 lines/s, each column as large as its records)
	sc := blockScratches.Get().(*blockScratch)
	defer sc.put()
	ids, rest, raws := slices.Grow(sc.ids[:0], 12*len(recs)), slices.Grow(sc.rest[:0], size+3*len(recs)), slices.Grow(sc.raws[:0], size)
	defer func() { sc.ids, sc.rest, sc.raws = ids, rest, raws }()
	var lastMs int64
	for i, r := range recs {
		if i > 0 && bytes.Compare(r.ID[:], recs[i-1].ID[:]) <= 0 {
			return dst, fmt.Errorf("index: block records out of ID order at %d", i)
		}
		ms := r.ID.Millis()
		var tag [6]byte
		copy(tag[:], r.ID[6:12])
		t, ok := tagIdx[tag]
		if !ok {
			t = len(tags)
			tagIdx[tag] = t
			tags = append(tags, tag)
		}
		ids = binary.AppendUvarint(ids, uint64(ms-lastMs))
		ids = binary.AppendUvarint(ids, uint64(t))
		ids = binary.AppendUvarint(ids, uint64(binary.BigEndian.Uint32(r.ID[12:16])))
		lastMs = ms
		var v record.View
		if err := v.Reset(r.Data); err != nil {
			return dst, fmt.Errorf("index: block record %s: %w", r.ID, err)
		}
		start, end, err := record.RawSpan(r.Data)
		if err != nil {
			return dst, fmt.Errorf("index: block record %s: %w", r.ID, err)
		}
		rest = binary.AppendUvarint(rest, uint64(len(r.Data)-(end-start)))
		rest = append(append(rest, r.Data[:start]...), r.Data[end:]...)
		raws = append(raws, r.Data[start:end]...)
		addWord := func(w []byte) { words.add(xxhash.Sum64(w)) }
		if msg, raw := v.Message(), v.Raw(); !wordsWithin(msg, raw) {
			record.EachWord(msg, addWord)
		}
		record.EachWord(v.Raw(), addWord)
	}
	cols := binary.AppendUvarint(slices.Grow(sc.cols[:0], 8+6*len(tags)+len(ids)+len(rest)+len(raws)), uint64(len(tags)))
	for _, t := range tags {
		cols = append(cols, t[:]...)
	}
	cols = append(append(append(cols, ids...), rest...), raws...)
	sc.cols = cols
	if len(cols) > maxBlockBytes {
		return dst, fmt.Errorf("index: block of %d bytes exceeds %d", len(cols), maxBlockBytes)
	}
	filter := make([]uint64, max(1, (words.len()*blockBitsPerWord+63)/64))
	words.each(func(h uint64) { bloomAdd(filter, h) })
	dst = append(dst, blockMagic)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	dst = binary.AppendUvarint(dst, uint64(len(filter)))
	for _, w := range filter {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	dst = binary.AppendUvarint(dst, uint64(len(cols)))
	return blockEncoder().EncodeAll(cols, dst), nil
}

// blockScratch holds appendBlock's columns between blocks.
type blockScratch struct{ ids, rest, raws, cols []byte }

var blockScratches = sync.Pool{New: func() any { return new(blockScratch) }}

// put gives sc back, unless a block of long lines grew it past what blocks
// of ordinary lines take: that one is left to the collector.
func (sc *blockScratch) put() {
	if cap(sc.ids)+cap(sc.rest)+cap(sc.raws)+cap(sc.cols) > 12<<20 {
		return
	}
	blockScratches.Put(sc)
}

// isBlock reports whether a stored value is a block rather than one record.
func isBlock(v []byte) bool { return len(v) > 0 && v[0] == blockMagic }

// blockHeader is what a block says before its compressed columns.
type blockHeader struct {
	count  int
	filter []byte // words × 8 bytes, little endian
	size   int    // the columns' decompressed length
	body   []byte // the zstd frame
}

func parseBlockHeader(b []byte) (blockHeader, error) {
	var h blockHeader
	if !isBlock(b) {
		return h, fmt.Errorf("%w: no block magic", ErrBadBlock)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > maxBlockRecords {
		return h, fmt.Errorf("%w: bad record count", ErrBadBlock)
	}
	b = b[k:]
	words, k := binary.Uvarint(b)
	if k <= 0 || words == 0 || words > uint64(len(b)-k)/8 {
		return h, fmt.Errorf("%w: bad filter length", ErrBadBlock)
	}
	b = b[k:]
	h.count, h.filter, b = int(n), b[:words*8], b[words*8:]
	size, k := binary.Uvarint(b)
	if k <= 0 || size > maxBlockBytes {
		return h, fmt.Errorf("%w: bad columns length", ErrBadBlock)
	}
	h.size, h.body = int(size), b[k:]
	return h, nil
}

// mayHaveWord reports whether a record of the block with header h may hold
// word (false: none does). A term of several words may match only if every
// word of it may.
func (h blockHeader) mayHaveWord(term []byte) bool {
	ok := true
	record.EachWord(term, func(w []byte) {
		if ok && !bloomHas(h.filter, xxhash.Sum64(w)) {
			ok = false
		}
	})
	return ok
}

// blockRulesOut reports whether the block v has no record holding word, as
// its filter says (false without a word, or for a header that does not
// parse: the decoder reports that).
// skipped, when set, counts the blocks it rules out.
func blockRulesOut(v, word []byte, skipped *atomic.Uint64) bool {
	if len(word) == 0 {
		return false
	}
	h, err := parseBlockHeader(v)
	if err != nil {
		return false
	}
	if !h.mayHaveWord(word) {
		if skipped != nil {
			skipped.Add(1)
		}
		return true
	}
	return false
}

// decodedBlock is a block's records, in ID order.
type decodedBlock struct {
	IDs  []record.ID
	Data [][]byte // encodings, in one backing buffer
}

// decodeBlock decodes a block and checks that every record in it decodes. It
// never panics, whatever b holds, and allocates at most the declared columns
// length (≤ maxBlockBytes) plus the records it returns.
func decodeBlock(b []byte) (decodedBlock, error) { return decodeBlockFor(b, nil) }

// decodeBlockFor is decodeBlock for a scan that keeps only records holding
// word (ScanOptions.Word): a record whose word-bearing parts cannot hold it
// is left out — its Data is nil, its ID is there — without being put
// together or decoded. A record's message is either a literal in its
// encoding without the raw bytes or a reference into its raw bytes, so a
// record neither of which contains the word's bytes holds the word in
// neither its message nor its raw line. A word query keeps about one record
// in a hundred of the blocks it cannot skip: the others cost their IDs and
// two byte searches (BenchmarkBlockWordPerLine). Records left out are not
// checked; the scrubber (scrub.go) checks every record of every block.
func decodeBlockFor(b []byte, word []byte) (decodedBlock, error) {
	var out decodedBlock
	h, err := parseBlockHeader(b)
	if err != nil {
		return out, err
	}
	// the decoder writes at most the declared length (the cap), whatever
	// the frame claims
	cols, err := blockDecoder().DecodeAll(h.body, make([]byte, 0, h.size))
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrBadBlock, err)
	}
	if len(cols) != h.size {
		return out, fmt.Errorf("%w: columns of %d bytes, %d declared", ErrBadBlock, len(cols), h.size)
	}
	d := colReader{b: cols}
	ntags := d.uvarint()
	if ntags == 0 || ntags > uint64(h.count) || ntags*6 > uint64(d.left()) {
		return out, fmt.Errorf("%w: bad tag count", ErrBadBlock)
	}
	tags := d.next(int(ntags) * 6)
	out.IDs = make([]record.ID, h.count)
	var ms uint64
	for i := range out.IDs {
		ms += d.uvarint()
		t, seq := d.uvarint(), d.uvarint()
		if d.err != nil || ms >= 1<<48 || t >= ntags || seq > 1<<32-1 {
			return decodedBlock{}, fmt.Errorf("%w: bad ID %d", ErrBadBlock, i)
		}
		id := &out.IDs[i]
		var m [8]byte
		binary.BigEndian.PutUint64(m[:], ms)
		copy(id[0:6], m[2:])
		copy(id[6:12], tags[t*6:])
		binary.BigEndian.PutUint32(id[12:], uint32(seq))
		if i > 0 && bytes.Compare(id[:], out.IDs[i-1][:]) <= 0 {
			return decodedBlock{}, fmt.Errorf("%w: IDs out of order at %d", ErrBadBlock, i)
		}
	}
	rests := make([][]byte, h.count)
	size := 0
	for i := range rests {
		n := d.uvarint()
		if d.err != nil || n > uint64(d.left()) {
			return decodedBlock{}, fmt.Errorf("%w: bad record %d", ErrBadBlock, i)
		}
		rests[i] = d.next(int(n))
		size += int(n)
	}
	raws := d.rest()
	need := size + len(raws)
	var skip []int // per record left out for word, the length of its raw bytes; -1 if kept
	if len(word) > 0 {
		var err error
		if skip, need, err = wordSkips(rests, raws, word); err != nil {
			return decodedBlock{}, err
		}
	}
	buf := make([]byte, 0, need)
	out.Data = make([][]byte, h.count)
	for i, r := range rests {
		if skip != nil && skip[i] >= 0 {
			raws = raws[skip[i]:]
			continue
		}
		start := len(buf)
		buf, raws, err = record.SpliceRaw(buf, r, raws)
		if err != nil {
			return decodedBlock{}, fmt.Errorf("%w: record %d: %w", ErrBadBlock, i, err)
		}
		out.Data[i] = buf[start:len(buf):len(buf)]
		var v record.View
		if err := v.Reset(out.Data[i]); err != nil {
			return decodedBlock{}, fmt.Errorf("%w: record %d: %w", ErrBadBlock, i, err)
		}
	}
	if len(raws) != 0 {
		return decodedBlock{}, fmt.Errorf("%w: %d raw bytes no record claims", ErrBadBlock, len(raws))
	}
	// buf never grew (its capacity was the exact total), so the slices of
	// out.Data still point into it
	return out, nil
}

// wordSkips returns, for each record of a block (its encoding without the
// raw bytes in rests, the raw bytes of all in raws), the length of its raw
// bytes if neither part contains word, -1 if one does; and the bytes the
// records kept take once put together.
func wordSkips(rests [][]byte, raws, word []byte) ([]int, int, error) {
	skip := make([]int, len(rests))
	need := 0
	for i, r := range rests {
		_, n, err := record.RestRaw(r)
		if err == nil && n > len(raws) {
			err = fmt.Errorf("%w: raw bytes beyond the column's end", record.ErrCorrupt)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: record %d: %w", ErrBadBlock, i, err)
		}
		if bytes.Contains(r, word) || bytes.Contains(raws[:n], word) {
			skip[i] = -1
			need += len(r) + n
		} else {
			skip[i] = n
		}
		raws = raws[n:]
	}
	return skip, need, nil // (raw bytes no record claims are refused after)
}

// colReader reads a block's columns; the first error sticks.
type colReader struct {
	b   []byte
	err error
}

func (c *colReader) left() int { return len(c.b) }

func (c *colReader) uvarint() uint64 {
	if c.err != nil {
		return 0
	}
	x, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.err = ErrBadBlock
		return 0
	}
	c.b = c.b[n:]
	return x
}

// next returns the next n bytes; the caller checked n <= left().
func (c *colReader) next(n int) []byte {
	s := c.b[:n:n]
	c.b = c.b[n:]
	return s
}

func (c *colReader) rest() []byte { return c.b }

// bloomAdd and bloomHas use double hashing over the two halves of one
// 64-bit hash.
func bloomAdd(f []uint64, h uint64) {
	n := uint64(len(f)) * 64
	a, b := h, bits.RotateLeft64(h, 32)|1
	for range blockHashes {
		i := a % n
		f[i/64] |= 1 << (i % 64)
		a += b
	}
}

func bloomHas(filter []byte, h uint64) bool {
	n := uint64(len(filter) / 8 * 64)
	if n == 0 {
		return true
	}
	a, b := h, bits.RotateLeft64(h, 32)|1
	for range blockHashes {
		i := a % n
		w := binary.LittleEndian.Uint64(filter[i/64*8:])
		if w&(1<<(i%64)) == 0 {
			return false
		}
		a += b
	}
	return true
}

// wordsWithin reports whether every word of msg is a word of raw, as it is
// when raw ends with msg at a word boundary (a syslog line and its message):
// then the message need not be taken apart for the filter a second time.
func wordsWithin(msg, raw []byte) bool {
	if !bytes.HasSuffix(raw, msg) {
		return false
	}
	at := len(raw) - len(msg)
	return len(msg) == 0 || at == 0 || !record.WordByte(raw[at-1]) || !record.WordByte(msg[0])
}

// wordSet is a set of word hashes: open addressing with linear probing over
// a table kept between blocks (wordSets), which takes a third of the time
// of a map and allocates nothing once grown.
type wordSet struct {
	slots []uint64 // 0 is an empty slot; the hash 0 is kept in zero
	n     int
	zero  bool
}

var wordSets = sync.Pool{New: func() any { return &wordSet{slots: make([]uint64, 1024)} }}

func (s *wordSet) reset() {
	clear(s.slots)
	s.n, s.zero = 0, false
}

func (s *wordSet) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

func (s *wordSet) add(h uint64) {
	if h == 0 {
		s.zero = true
		return
	}
	if 2*(s.n+1) > len(s.slots) {
		old := s.slots
		s.slots, s.n = make([]uint64, 2*len(old)), 0
		for _, o := range old {
			if o != 0 {
				s.insert(o)
			}
		}
	}
	s.insert(h)
}

func (s *wordSet) insert(h uint64) {
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

func (s *wordSet) each(fn func(h uint64)) {
	if s.zero {
		fn(0)
	}
	for _, h := range s.slots {
		if h != 0 {
			fn(h)
		}
	}
}
