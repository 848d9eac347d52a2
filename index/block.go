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

// A block holds many records of one partition as a single value: their IDs
// and their encodings, cut into columns and compressed, with a filter of the
// words in them ahead of the compressed part. It is the unit sealed data is to be stored in (one Badger
// entry per block rather than per record: fewer keys to compact, better
// compression, and word queries that skip blocks whose filter rules the word
// out). The sealer writes them (seal.go). BenchmarkBlockBytesPerLine shows
// a block needs a few thousand records to beat the store by half, more than
// a minute slice of one partition holds at ordinary rates
// (docs/architecture.md).
//
// Layout 2 (written since store format 6; layout 1, below, is still read):
//
//	magic u8 (0xB2, never the first byte of an encoded record)
//	count, filter words and filter, columns length: as in layout 1 (the
//	    columns length is the sum of the columns' decompressed lengths)
//	per column, in the order of blockColumn: uvarint decompressed length,
//	    uvarint compressed length, that many bytes of one zstd frame (none
//	    for an empty column)
//
// Each record's encoding is cut in three: its head (version to raw length),
// its raw line and what follows (six strings, then source, peer and fields).
// A raw line is cut at its first six spaces into tokens (an RFC 5424 line:
// PRI and version, timestamp, hostname, app-name, procid, msgid) and the tail
// after them, each token in a column of its own with its space, so that
// ZSTD sees hostnames next to hostnames rather than next to messages. Of the
// six strings (hostname, app-name, procid, msgid, structured data,
// message), one that refers into the raw line exactly where its token, the
// tail or the text after the structured data lies is stored as a kind byte
// (and a length where it cannot be told); anything else as the encoding has
// it. The decoder puts back the same bytes. On the sample lines a block of
// 1 024 records takes 0.8× the bytes of layout 1 (BenchmarkBlockLayouts).
//
// Layout 1:
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

// maxBlock2Bytes bounds the columns of a block of layout 2, which take up
// to seven bytes a record more than layout 1's (a shape and six kinds, less
// the length layout 1 gave each encoding): every set of records layout 1
// holds, layout 2 holds.
const maxBlock2Bytes = maxBlockBytes + 7*maxBlockRecords

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

// blockLevel is the ZSTD level of blocks. SpeedFastest rather than the
// default: the encoder took half of the sealer's time, and at this level
// it takes about 0.6 of its time for about 2% more bytes
// (BenchmarkBlockLevels). Blocks of any level decode alike.
const blockLevel = zstd.SpeedFastest

func newBlockEncoder(level zstd.EncoderLevel) *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err) // only for invalid options
	}
	return e
}

var (
	blockEncoder = sync.OnceValue(func() *zstd.Encoder { return newBlockEncoder(blockLevel) })
	blockDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlockBytes),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// blockMagic2 begins a block of layout 2; blockMagic one of layout 1.
const blockMagic2 = 0xB2

// blockColumn names the columns of a layout-2 block, in their order.
type blockColumn int

const (
	colIDs    blockColumn = iota // uvarint n, n × 6-byte tags, then per record ms delta, tag index, sequence (layout 1's)
	colHeads                     // per record its encoding up to the raw bytes, as stored
	colShapes                    // per record one byte: the tokens its raw line was cut into, 0..rawTokens
	colTok0                      // token k of each raw line cut into more than k tokens, with its space, in colTok0+k
	_
	_
	_
	_
	_
	colTails    // per record the raw line after its tokens
	colKinds    // per record and string 0..5 after the raw bytes: a strKind
	colLens     // uvarint length of each string of kind strAt
	colVerbatim // strings of kind strVerbatim, as stored
	colTrailers // per record its encoding after the six strings, as stored
	numBlockColumns
)

// rawTokens is how many space-ended tokens a raw line is cut into at most:
// an RFC 5424 line's PRI and version, timestamp, hostname, app-name, procid
// and msgid (colTok0 to colTails).
const rawTokens = int(colTails - colTok0)

// strKind is how a layout-2 block stores one of the six strings of a
// record's encoding that follow its raw bytes.
type strKind byte

const (
	strVerbatim strKind = iota // as the encoding has it, in colVerbatim
	strExact                   // a reference to its anchor, of the anchor's length
	strAt                      // a reference to its anchor, its length in colLens
)

// strAnchor returns where in a raw line of rawLen bytes, cut into shape
// tokens starting at tok (tok[shape] is the tail's start), string s of the
// six is expected to begin, and its expected length (-1 if none): the
// hostname, app-name, procid and msgid their token without its space (only
// for a line cut into every token), the structured data the tail's start,
// the message what follows the structured data (sdLen bytes, as the
// encoding says) and one space, up to the end. ok is false where s has no
// anchor.
func strAnchor(s, shape int, tok *[rawTokens + 1]int, rawLen, sdLen int) (anchor, length int, ok bool) {
	switch {
	case s < 4:
		if shape != rawTokens {
			return 0, 0, false
		}
		return tok[s+2], tok[s+3] - tok[s+2] - 1, true
	case s == 4:
		return tok[shape], -1, true
	default:
		at := tok[shape] + sdLen + 1
		if at > rawLen {
			return 0, 0, false
		}
		return at, rawLen - at, true
	}
}

// uvarintLen is the length of x's shortest uvarint encoding: the only one
// the decoder writes back, so a string is stored by kind only where its
// encoding used it.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// appendBlock appends the block of recs (sorted by ID, IDs unique) to dst,
// in layout 2.
func appendBlock(dst []byte, recs []blockRecord) ([]byte, error) {
	return appendBlockWith(dst, recs, blockEncoder())
}

// appendBlockWith is appendBlock with the encoder of the columns' frames.
func appendBlockWith(dst []byte, recs []blockRecord, enc *zstd.Encoder) ([]byte, error) {
	if len(recs) == 0 || len(recs) > maxBlockRecords {
		return dst, fmt.Errorf("index: a block holds 1 to %d records, not %d", maxBlockRecords, len(recs))
	}
	var tags [][6]byte
	tagIdx := map[[6]byte]int{}
	words := wordSets.Get().(*wordSet)
	defer wordSets.Put(words)
	words.reset()
	// the columns are scratch, kept between blocks (the sealer cuts a
	// hundred a second at 100 000 lines/s)
	sc := blockScratches.Get().(*blockScratch)
	defer sc.put()
	c := &sc.cols
	for i := range c {
		c[i] = c[i][:0]
	}
	ids := slices.Grow(sc.ids[:0], 12*len(recs))
	defer func() { sc.ids = ids }()
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
		c[colHeads] = append(c[colHeads], r.Data[:start]...)
		raw := r.Data[start:end]
		var tok [rawTokens + 1]int
		shape, at := 0, 0
		for shape < rawTokens {
			j := bytes.IndexByte(raw[at:], ' ')
			if j < 0 {
				break
			}
			tok[shape] = at
			c[colTok0+blockColumn(shape)] = append(c[colTok0+blockColumn(shape)], raw[at:at+j+1]...)
			at += j + 1
			shape++
		}
		tok[shape] = at
		c[colShapes] = append(c[colShapes], byte(shape))
		c[colTails] = append(c[colTails], raw[at:]...)
		post, sdLen := r.Data[end:], 0
		for s := range 6 {
			// View.Reset took the encoding: every uvarint is there
			tag, n := binary.Uvarint(post)
			kind, size := strVerbatim, n+int(tag>>1)
			if tag&1 == 1 {
				off, m := binary.Uvarint(post[n:])
				size = n + m
				if n == uvarintLen(tag) && m == uvarintLen(off) {
					anchor, length, ok := strAnchor(s, shape, &tok, len(raw), sdLen)
					switch {
					case !ok || off != uint64(anchor):
					case length >= 0 && tag>>1 == uint64(length):
						kind = strExact
					default:
						kind = strAt
						c[colLens] = binary.AppendUvarint(c[colLens], tag>>1)
					}
				}
			}
			if s == 4 {
				sdLen = int(tag >> 1)
			}
			c[colKinds] = append(c[colKinds], byte(kind))
			if kind == strVerbatim {
				c[colVerbatim] = append(c[colVerbatim], post[:size]...)
			}
			post = post[size:]
		}
		c[colTrailers] = append(c[colTrailers], post...)
		addWord := func(w []byte) { words.add(xxhash.Sum64(w)) }
		if msg, raw := v.Message(), v.Raw(); !wordsWithin(msg, raw) {
			record.EachWord(msg, addWord)
		}
		record.EachWord(v.Raw(), addWord)
	}
	c[colIDs] = binary.AppendUvarint(c[colIDs], uint64(len(tags)))
	for _, t := range tags {
		c[colIDs] = append(c[colIDs], t[:]...)
	}
	c[colIDs] = append(c[colIDs], ids...)
	total := 0
	for _, col := range c {
		total += len(col)
	}
	if total > maxBlock2Bytes {
		return dst, fmt.Errorf("index: block of %d bytes exceeds %d", total, maxBlock2Bytes)
	}
	filter := make([]uint64, max(1, (words.len()*blockBitsPerWord+63)/64))
	words.each(func(h uint64) { bloomAdd(filter, h) })
	dst = append(dst, blockMagic2)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	dst = binary.AppendUvarint(dst, uint64(len(filter)))
	for _, w := range filter {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	dst = binary.AppendUvarint(dst, uint64(total))
	for _, col := range c {
		dst = binary.AppendUvarint(dst, uint64(len(col)))
		if len(col) == 0 {
			dst = append(dst, 0)
			continue
		}
		// the frame's length goes before it: encode after room for the
		// longest uvarint, then move the frame up to its length
		at := len(dst)
		dst = enc.EncodeAll(col, append(dst, make([]byte, binary.MaxVarintLen32)...))
		frame := len(dst) - at - binary.MaxVarintLen32
		n := binary.PutUvarint(dst[at:], uint64(frame))
		copy(dst[at+n:], dst[at+binary.MaxVarintLen32:])
		dst = dst[:at+n+frame]
	}
	return dst, nil
}

// blockScratch holds appendBlock's columns between blocks.
type blockScratch struct {
	ids  []byte
	cols [numBlockColumns][]byte
}

var blockScratches = sync.Pool{New: func() any { return new(blockScratch) }}

// put gives sc back, unless a block of long lines grew it past what blocks
// of ordinary lines take: that one is left to the collector.
func (sc *blockScratch) put() {
	total := cap(sc.ids)
	for _, c := range sc.cols {
		total += cap(c)
	}
	if total > 12<<20 {
		return
	}
	blockScratches.Put(sc)
}

// isBlock reports whether a stored value is a block rather than one record.
func isBlock(v []byte) bool { return len(v) > 0 && (v[0] == blockMagic || v[0] == blockMagic2) }

// blockHeader is what a block says before its compressed columns.
type blockHeader struct {
	layout int // 1 or 2
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
	h.layout = 1
	if b[0] == blockMagic2 {
		h.layout = 2
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
	if k <= 0 || size > maxBlockBytes && (h.layout == 1 || size > maxBlock2Bytes) {
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
	// what the columns are put together in is scratch: the records
	// returned are copied out of it
	sc := decodeScratches.Get().(*decodeScratch)
	defer sc.put()
	if h.layout == 2 {
		return h.decode2(sc, word)
	}
	var rests [][]byte
	var raws []byte
	out.IDs, rests, raws, err = h.columns1(sc)
	if err != nil {
		return decodedBlock{}, err
	}
	need := len(raws)
	for _, r := range rests {
		need += len(r)
	}
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

// columns1 takes a layout-1 block apart: its IDs, each record's encoding
// without its raw bytes, and the raw bytes of all.
func (h blockHeader) columns1(sc *decodeScratch) ([]record.ID, [][]byte, []byte, error) {
	// the decoder writes at most the declared length (the cap), whatever
	// the frame claims
	sc.cols = slices.Grow(sc.cols[:0], h.size)
	cols, err := blockDecoder().DecodeAll(h.body, sc.cols[:0:h.size])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrBadBlock, err)
	}
	if len(cols) != h.size {
		return nil, nil, nil, fmt.Errorf("%w: columns of %d bytes, %d declared", ErrBadBlock, len(cols), h.size)
	}
	d := colReader{b: cols}
	ids, err := decodeIDs(&d, h.count)
	if err != nil {
		return nil, nil, nil, err
	}
	rests := sc.restsFor(h.count)
	for i := range rests {
		n := d.uvarint()
		if d.err != nil || n > uint64(d.left()) {
			return nil, nil, nil, fmt.Errorf("%w: bad record %d", ErrBadBlock, i)
		}
		rests[i] = d.next(int(n))
	}
	return ids, rests, d.rest(), nil
}

// decodeIDs reads the tags and the count IDs of a block's ID column.
func decodeIDs(d *colReader, count int) ([]record.ID, error) {
	ntags := d.uvarint()
	if ntags == 0 || ntags > uint64(count) || ntags*6 > uint64(d.left()) {
		return nil, fmt.Errorf("%w: bad tag count", ErrBadBlock)
	}
	tags := d.next(int(ntags) * 6)
	ids := make([]record.ID, count)
	var ms uint64
	for i := range ids {
		ms += d.uvarint()
		t, seq := d.uvarint(), d.uvarint()
		if d.err != nil || ms >= 1<<48 || t >= ntags || seq > 1<<32-1 {
			return nil, fmt.Errorf("%w: bad ID %d", ErrBadBlock, i)
		}
		id := &ids[i]
		var m [8]byte
		binary.BigEndian.PutUint64(m[:], ms)
		copy(id[0:6], m[2:])
		copy(id[6:12], tags[t*6:])
		binary.BigEndian.PutUint32(id[12:], uint32(seq))
		if i > 0 && bytes.Compare(id[:], ids[i-1][:]) <= 0 {
			return nil, fmt.Errorf("%w: IDs out of order at %d", ErrBadBlock, i)
		}
	}
	return ids, nil
}

// span is where a piece of a record lies in one column of a layout-2 block.
type span struct{ from, to int32 }

// strPiece is where one of the six strings of a record of a layout-2 block
// is: a span of colVerbatim, or a reference of length bytes at anchor.
type strPiece struct {
	kind           strKind
	verbatim       span
	length, anchor uint32
}

// recordPieces is where one record of a layout-2 block lies in the columns.
type recordPieces struct {
	head, tail, trailer span
	tok                 [rawTokens]span // with its space; shape of them
	shape               int
	strs                [6]strPiece
	size                int // its encoding's length, put together
}

// columns2 decompresses a layout-2 block's columns (into sc, reused) and
// decodes its IDs.
func (h blockHeader) columns2(sc *decodeScratch) ([]record.ID, *[numBlockColumns][]byte, error) {
	col := &sc.col
	*col = [numBlockColumns][]byte{}
	bad := func(what string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBlock, fmt.Sprintf(what, args...))
	}
	sc.cols = slices.Grow(sc.cols[:0], h.size)
	all := sc.cols[:0:h.size]
	b := h.body
	for i := range col {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(cap(all)-len(all)) {
			return nil, nil, bad("column %d: bad length", i)
		}
		b = b[k:]
		z, k := binary.Uvarint(b)
		if k <= 0 || z > uint64(len(b)-k) || (n == 0) != (z == 0) {
			return nil, nil, bad("column %d: bad frame length", i)
		}
		frame := b[k : k+int(z)]
		b = b[k+int(z):]
		if n == 0 {
			continue
		}
		start := len(all)
		var err error
		// at most the room left (the cap), whatever the frame claims
		if all, err = blockDecoder().DecodeAll(frame, all); err != nil {
			return nil, nil, fmt.Errorf("%w: column %d: %w", ErrBadBlock, i, err)
		}
		if len(all)-start != int(n) {
			return nil, nil, bad("column %d of %d bytes, %d declared", i, len(all)-start, n)
		}
		col[i] = all[start:len(all):len(all)]
	}
	if len(b) != 0 || len(all) != h.size {
		return nil, nil, bad("columns of %d bytes and %d more, %d declared", len(all), len(b), h.size)
	}
	if len(col[colShapes]) != h.count || len(col[colKinds]) != 6*h.count {
		return nil, nil, bad("%d shapes and %d kinds for %d records", len(col[colShapes]), len(col[colKinds]), h.count)
	}
	d := colReader{b: col[colIDs]}
	ids, err := decodeIDs(&d, h.count)
	if err != nil {
		return nil, nil, err
	}
	if d.left() != 0 {
		return nil, nil, bad("%d bytes after the IDs", d.left())
	}
	return ids, col, nil
}

// walker2 finds where the records of a layout-2 block lie in its columns,
// one after the other, checking every length against what its column holds.
type walker2 struct {
	col  *[numBlockColumns][]byte
	at   [numBlockColumns]int // what is read of each column
	lens colReader
	i    int // the next record
}

func (w *walker2) left(c blockColumn) []byte { return w.col[c][w.at[c]:] }

func (w *walker2) take(c blockColumn, n int) span {
	s := span{int32(w.at[c]), int32(w.at[c] + n)}
	w.at[c] += n
	return s
}

// next finds the pieces of the next record.
func (w *walker2) next(p *recordPieces) error {
	i := w.i
	w.i++
	bad := func(what string, args ...any) error {
		return fmt.Errorf("%w: record %d: %s", ErrBadBlock, i, fmt.Sprintf(what, args...))
	}
	n, rawLen, ok := headSize(w.left(colHeads))
	if !ok {
		return bad("bad head")
	}
	p.head = w.take(colHeads, n)
	p.shape = int(w.col[colShapes][i])
	if p.shape > rawTokens {
		return bad("%d tokens", p.shape)
	}
	var tok [rawTokens + 1]int
	raw := 0
	for k := range p.shape {
		c := colTok0 + blockColumn(k)
		j := bytes.IndexByte(w.left(c), ' ')
		if j < 0 {
			return bad("token %d missing", k)
		}
		tok[k] = raw
		p.tok[k] = w.take(c, j+1)
		raw += j + 1
	}
	tok[p.shape] = raw
	tail := rawLen - raw
	if tail < 0 || tail > len(w.left(colTails)) {
		return bad("raw line of %d bytes", rawLen)
	}
	p.tail = w.take(colTails, tail)
	p.size = n + rawLen
	sdLen := 0
	for s := range 6 {
		sp := &p.strs[s]
		sp.kind = strKind(w.col[colKinds][6*i+s])
		var length uint64
		switch sp.kind {
		case strVerbatim:
			n, tag, ok := storedStrSize(w.left(colVerbatim))
			if !ok {
				return bad("string %d", s)
			}
			sp.verbatim = w.take(colVerbatim, n)
			p.size += n
			length = tag >> 1
		case strExact, strAt:
			anchor, l, ok := strAnchor(s, p.shape, &tok, rawLen, sdLen)
			if sp.kind == strExact {
				length = uint64(l)
				ok = ok && l >= 0
			} else {
				length = w.lens.uvarint()
				ok = ok && w.lens.err == nil && length <= uint64(rawLen)
			}
			if !ok {
				return bad("string %d of kind %d", s, sp.kind)
			}
			sp.length, sp.anchor = uint32(length), uint32(anchor)
			p.size += uvarintLen(length<<1|1) + uvarintLen(uint64(anchor))
		default:
			return bad("string %d of kind %d", s, sp.kind)
		}
		if s == 4 {
			if length > maxBlockBytes {
				return bad("structured data of %d bytes", length)
			}
			sdLen = int(length)
		}
	}
	n, ok = trailerSize(w.left(colTrailers))
	if !ok {
		return bad("bad trailer")
	}
	p.trailer = w.take(colTrailers, n)
	p.size += n
	return nil
}

// finish checks that the records walked claim every byte of the columns
// (the IDs, shapes and kinds were checked whole before).
func (w *walker2) finish() error {
	unclaimed := w.lens.left()
	for _, c := range []blockColumn{colHeads, colTails, colVerbatim, colTrailers} {
		unclaimed += len(w.left(c))
	}
	for k := range rawTokens {
		unclaimed += len(w.left(colTok0 + blockColumn(k)))
	}
	if unclaimed != 0 {
		return fmt.Errorf("%w: %d bytes no record claims", ErrBadBlock, unclaimed)
	}
	return nil
}

// mayHold reports whether record p may hold word where a word query looks
// (its raw line, or a literal message): without putting it together where
// word has no space, since a raw line is cut only at spaces. has says which
// columns hold word at all (wordColumns): the others need no look.
func (p *recordPieces) mayHold(col *[numBlockColumns][]byte, has *[numBlockColumns]bool, word []byte, scratch *[]byte) bool {
	if has[colVerbatim] {
		for _, sp := range p.strs {
			if sp.kind == strVerbatim && bytes.Contains(col[colVerbatim][sp.verbatim.from:sp.verbatim.to], word) {
				return true
			}
		}
	}
	if bytes.IndexByte(word, ' ') >= 0 {
		*scratch = p.appendRaw((*scratch)[:0], col)
		return bytes.Contains(*scratch, word)
	}
	for k := range p.shape {
		c := colTok0 + blockColumn(k)
		if t := p.tok[k]; has[c] && bytes.Contains(col[c][t.from:t.to], word) {
			return true
		}
	}
	return has[colTails] && bytes.Contains(col[colTails][p.tail.from:p.tail.to], word)
}

// wordColumns says which of the columns mayHold looks in (the raw line's
// tokens and tail, and the literal strings) hold word anywhere. A word with
// a space may span tokens: every one of them may then hold it.
func wordColumns(col *[numBlockColumns][]byte, word []byte) (has [numBlockColumns]bool) {
	spaced := bytes.IndexByte(word, ' ') >= 0
	for c := colTok0; c <= colTails; c++ {
		has[c] = spaced || bytes.Contains(col[c], word)
	}
	has[colVerbatim] = spaced || bytes.Contains(col[colVerbatim], word)
	return has
}

// appendRaw appends p's raw line to dst.
func (p *recordPieces) appendRaw(dst []byte, col *[numBlockColumns][]byte) []byte {
	for k := range p.shape {
		t := p.tok[k]
		dst = append(dst, col[colTok0+blockColumn(k)][t.from:t.to]...)
	}
	return append(dst, col[colTails][p.tail.from:p.tail.to]...)
}

// appendTo appends p's encoding, put together, to dst.
func (p *recordPieces) appendTo(dst []byte, col *[numBlockColumns][]byte) []byte {
	dst = append(dst, col[colHeads][p.head.from:p.head.to]...)
	dst = p.appendRaw(dst, col)
	for _, sp := range p.strs {
		if sp.kind == strVerbatim {
			dst = append(dst, col[colVerbatim][sp.verbatim.from:sp.verbatim.to]...)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(sp.length)<<1|1)
		dst = binary.AppendUvarint(dst, uint64(sp.anchor))
	}
	return append(dst, col[colTrailers][p.trailer.from:p.trailer.to]...)
}

// decode2 is decodeBlockFor for a block of layout 2: it puts together only
// the records it keeps, straight into the buffers it returns them in. It
// walks the records a chunk at a time (decodeChunk), so what it keeps of
// their pieces is bounded whatever the block's count: records kept are put
// together in one buffer per chunk, of exactly their size.
func (h blockHeader) decode2(sc *decodeScratch, word []byte) (decodedBlock, error) {
	ids, col, err := h.columns2(sc)
	if err != nil {
		return decodedBlock{}, err
	}
	var has [numBlockColumns]bool
	if len(word) > 0 {
		has = wordColumns(col, word)
	}
	w := walker2{col: col, lens: colReader{b: col[colLens]}}
	out := decodedBlock{IDs: ids, Data: make([][]byte, h.count)}
	pieces := &sc.pieces
	for from := 0; from < h.count; from += decodeChunk {
		chunk := pieces[:min(decodeChunk, h.count-from)]
		var keep [decodeChunk]bool
		need := 0
		for i := range chunk {
			if err := w.next(&chunk[i]); err != nil {
				return decodedBlock{}, err
			}
			if keep[i] = len(word) == 0 || chunk[i].mayHold(col, &has, word, &sc.raws); keep[i] {
				need += chunk[i].size
			}
		}
		if need == 0 {
			continue
		}
		buf := make([]byte, 0, need)
		for i := range chunk {
			if !keep[i] {
				continue
			}
			start := len(buf)
			buf = chunk[i].appendTo(buf, col)
			out.Data[from+i] = buf[start:len(buf):len(buf)]
			var v record.View
			if err := v.Reset(out.Data[from+i]); err != nil {
				return decodedBlock{}, fmt.Errorf("%w: record %d: %w", ErrBadBlock, from+i, err)
			}
		}
		// buf never grew (its capacity was the exact total), so the slices
		// of out.Data still point into it
	}
	if err := w.finish(); err != nil {
		return decodedBlock{}, err
	}
	return out, nil
}

// decodeChunk is how many records of a layout-2 block decode2 walks before
// it puts the kept ones together.
const decodeChunk = 256

// decodeScratch is what a decoder puts a block's columns together in, kept
// between blocks (a word query decodes thousands a second).
type decodeScratch struct {
	cols, raws []byte
	rests      [][]byte
	col        [numBlockColumns][]byte // layout 2's columns, in cols
	pieces     [decodeChunk]recordPieces
}

var decodeScratches = sync.Pool{New: func() any { return new(decodeScratch) }}

// restsFor returns room for n records' encodings without their raw bytes.
func (sc *decodeScratch) restsFor(n int) [][]byte {
	sc.rests = slices.Grow(sc.rests[:0], n)[:n]
	return sc.rests
}

// put gives sc back, unless a block of long lines grew it past what blocks
// of ordinary lines take: that one is left to the collector.
func (sc *decodeScratch) put() {
	clear(sc.rests) // no encoding is kept alive from the pool
	sc.col = [numBlockColumns][]byte{}
	if cap(sc.cols)+cap(sc.raws)+24*cap(sc.rests) > 12<<20 {
		return
	}
	decodeScratches.Put(sc)
}

// headSize returns the length of a record's head (its encoding up to the raw
// bytes: version, format, transport, reason, PRI, flags, event-time delta,
// raw length) at the start of b, and the raw length it gives.
func headSize(b []byte) (n, rawLen int, ok bool) {
	n = 5
	if len(b) < n {
		return 0, 0, false
	}
	for range 2 {
		_, k := binary.Uvarint(b[n:]) // a varint's bytes are a uvarint's
		if k <= 0 {
			return 0, 0, false
		}
		n += k
	}
	u, k := binary.Uvarint(b[n:])
	if k <= 0 || u > maxBlockBytes {
		return 0, 0, false
	}
	return n + k, int(u), true
}

// storedStrSize returns the length of the string of an encoding at the
// start of b (a tag, then a reference's offset or a literal's bytes) and
// its tag.
func storedStrSize(b []byte) (n int, tag uint64, ok bool) {
	tag, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, 0, false
	}
	if tag&1 == 1 {
		_, m := binary.Uvarint(b[k:])
		return k + m, tag, m > 0
	}
	if tag>>1 > uint64(len(b)-k) {
		return 0, 0, false
	}
	return k + int(tag>>1), tag, true
}

// trailerSize returns the length of the end of an encoding at the start of
// b: its source and peer strings, then its fields (a count, a key and value
// string each).
func trailerSize(b []byte) (int, bool) {
	n := 0
	for range 2 {
		k, _, ok := storedStrSize(b[n:])
		if !ok {
			return 0, false
		}
		n += k
	}
	fields, k := binary.Uvarint(b[n:])
	if k <= 0 || fields > record.MaxFields {
		return 0, false
	}
	n += k
	for range 2 * fields {
		k, _, ok := storedStrSize(b[n:])
		if !ok {
			return 0, false
		}
		n += k
	}
	return n, true
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

// writeBlock is how the sealer, the capture and the switch encode blocks:
// appendBlock, or, set by tests, an encoder of an earlier layout.
var writeBlock = appendBlock
