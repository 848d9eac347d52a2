package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
)

// appendBlockV1 appends the block of recs in layout 1, as logmesh wrote
// blocks before store format 6: the decoder must still read them.
func appendBlockV1(dst []byte, recs []blockRecord) ([]byte, error) {
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
	ids, rest, raws := make([]byte, 0, 12*len(recs)), make([]byte, 0, size+3*len(recs)), make([]byte, 0, size)
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
	cols := binary.AppendUvarint(nil, uint64(len(tags)))
	for _, t := range tags {
		cols = append(cols, t[:]...)
	}
	cols = append(append(append(cols, ids...), rest...), raws...)
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

// oddBlockRecords returns records whose encodings take every path of layout
// 2: lines the syslog parser takes apart in odd ways, strings that refer into
// the raw line away from their token, literals, fields, no raw line, and
// encodings with uvarints longer than they need be (which the decoder must
// give back as stored, not rewrite).
func oddBlockRecords(t testing.TB) []blockRecord {
	t.Helper()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	gen := record.NewGenerator(func() time.Time { return now })
	var p syslog.Parser
	var out []blockRecord
	add := func(r record.Record) {
		r.ID = gen.Next()
		out = append(out, blockRecord{ID: r.ID, Data: r.AppendEncode(nil)})
	}
	for _, line := range []string{
		`<13>1 2026-12-04T10:00:00.5Z host-a app 4242 ID7 [ex@32473 a="b c" d="\]"][two@1 x="y"] a message with [brackets]`,
		`<13>1 2026-12-04T10:00:00Z host-a app 4242 ID7 [ex@32473 a="b"]`,
		`<13>1 2026-12-04T10:00:00Z host-a app 4242 ID7 -`,
		`<13>1 - - - - - -`,
		`<13>1 - - - - - - `,
		`<13>1  2026-12-04T10:00:00Z  double  spaces - - msg`,
		` <13>1 2026-12-04T10:00:00Z leading space - - - msg`,
		`<13>1 2026-12-04T10:00:00Z same same same same - same`,
		`<13>1 2026-12-04T10:00:00Z host app - - - ` + "\xef\xbb\xbfBOM message\r\n",
		`<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
		`<34>Oct  1 02:04:05 mymachine su[123]: short day`,
		`no pri at all, six spaces in here or more`,
		`three spaces only`,
		`nospace`,
		"",
		"\x00\xff\xfe invalid \xc3 utf8 \n new line",
		`<13>1 2026-12-04T10:00:00Z h a p m - ` + strings.Repeat("long message ", 400),
	} {
		var r record.Record
		p.Parse([]byte(line), now, &r)
		r.Transport, r.Source, r.Peer = record.TransportTCP, "10.0.0.7:40112", "p1"
		add(r)
	}
	// strings in the raw line away from their tokens, and literals
	add(record.Record{Raw: []byte("xhostname yapp zproc"), Hostname: "hostname", AppName: "app", ProcID: "proc",
		Message: "not in the raw line", Peer: "p1"})
	add(record.Record{Raw: []byte("a b c d e f message at the end"), Hostname: "c", AppName: "d e", MsgID: "f",
		StructuredData: "f message", Message: "message at the end", Peer: "p1"})
	add(record.Record{Message: "no raw line", Hostname: "web-3", Peer: "p1"})
	// at their anchors, but shorter than what lies there
	add(record.Record{Raw: []byte("<13>1 2026-12-04T10:00:00Z hostnamelong appname 42 ID1 - message then trailer"),
		Hostname: "host", AppName: "name", StructuredData: "- me", Message: "message then", Peer: "p1"})
	r := record.Record{Raw: []byte("<13>1 2026-12-04T10:00:00Z host app - - - fields too"), Message: "fields too", Peer: "p1"}
	r.SetField("env", "prod")
	r.SetField("trace_id", "00f0")
	add(r)
	// a reference whose tag and offset take more bytes than they need
	var q record.Record
	p.Parse([]byte(`<13>1 2026-12-04T10:00:00Z longhost app 1 - - message`), now, &q)
	q.Peer = "p1"
	q.ID = gen.Next()
	data := q.AppendEncode(nil)
	_, end, err := record.RawSpan(data)
	if err != nil {
		t.Fatal(err)
	}
	tag, n := binary.Uvarint(data[end:])
	off, m := binary.Uvarint(data[end+n:])
	if tag&1 != 1 || n != 1 || m != 1 {
		t.Fatalf("the hostname of %q is not a one-byte reference", data)
	}
	long := slices.Concat(data[:end], []byte{byte(tag) | 0x80, 0, byte(off) | 0x80, 0x80, 0}, data[end+n+m:])
	var v record.View
	if err := v.Reset(long); err != nil || string(v.Hostname()) != "longhost" {
		t.Fatalf("the long-winded encoding does not read back: %v, %q", err, v.Hostname())
	}
	out = append(out, blockRecord{ID: q.ID, Data: long})
	return out
}

// TestBlockLayout2KeepsEveryEncodingExactly: every record of a layout-2 block
// decodes to the bytes it was stored as, whole and for a word query, among
// records that take every path of the layout.
func TestBlockLayout2KeepsEveryEncodingExactly(t *testing.T) {
	recs := oddBlockRecords(t)
	b, err := appendBlock(nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != blockMagic2 {
		t.Fatalf("appendBlock wrote magic %#x, not layout 2's", b[0])
	}
	got, err := decodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if got.IDs[i] != r.ID || !bytes.Equal(got.Data[i], r.Data) {
			t.Fatalf("record %d: stored %q, decoded %q", i, r.Data, got.Data[i])
		}
	}
	for _, word := range []string{"message", "host", "same", "failed", "nospace", "utf8", "prod"} {
		forWord, err := decodeBlockFor(b, []byte(word))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if forWord.Data[i] != nil && !bytes.Equal(forWord.Data[i], r.Data) {
				t.Fatalf("record %d decoded for %q differs", i, word)
			}
			if forWord.Data[i] == nil && holdsWord(t, r.Data, []byte(word)) {
				t.Fatalf("record %d holds %q and was left out", i, word)
			}
		}
	}
}

// TestBlocksOfLayout1StillRead: a store sealed before format 6 holds blocks
// of layout 1. They decode to what they hold, whole and for a word, as the
// same records in a layout-2 block do, with the same filter.
func TestBlocksOfLayout1StillRead(t *testing.T) {
	for name, recs := range map[string][]blockRecord{"sample": sampleBlockRecords(3000, 2000), "odd": oddBlockRecords(t)} {
		t.Run(name, func(t *testing.T) {
			b1, err := appendBlockV1(nil, recs)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := appendBlock(nil, recs)
			if err != nil {
				t.Fatal(err)
			}
			h1, err := parseBlockHeader(b1)
			if err != nil {
				t.Fatal(err)
			}
			h2, err := parseBlockHeader(b2)
			if err != nil {
				t.Fatal(err)
			}
			if h1.layout != 1 || h2.layout != 2 || !bytes.Equal(h1.filter, h2.filter) || h1.count != h2.count {
				t.Fatalf("headers: layout %d and %d, %d and %d records, filters equal %v",
					h1.layout, h2.layout, h1.count, h2.count, bytes.Equal(h1.filter, h2.filter))
			}
			got, err := decodeBlock(b1)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				if got.IDs[i] != r.ID || !bytes.Equal(got.Data[i], r.Data) {
					t.Fatalf("record %d of a layout-1 block differs", i)
				}
			}
			for _, word := range []string{"kernel", "message", "host-a", "zzzz"} {
				w1, err1 := decodeBlockFor(b1, []byte(word))
				w2, err2 := decodeBlockFor(b2, []byte(word))
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				for i := range recs {
					if w1.IDs[i] != w2.IDs[i] || !bytes.Equal(w1.Data[i], w2.Data[i]) || (w1.Data[i] == nil) != (w2.Data[i] == nil) {
						t.Fatalf("record %d decoded for %q differs between the layouts", i, word)
					}
				}
			}
		})
	}
}

// TestBlockLayout2StoresSampleLinesInLess: layout 2 is there to take less
// disk than layout 1 on syslog lines; this holds it to at most 0.85× on
// the sample lines in blocks of 1 024 (BenchmarkBlockLayouts gives the
// figure, 0.8×). A layout that stored every string verbatim, or the raw lines
// whole, would fail.
func TestBlockLayout2StoresSampleLinesInLess(t *testing.T) {
	recs := sampleBlockRecords(8192, 2000)
	var v1, v2 int
	for i := 0; i < len(recs); i += 1024 {
		b1, err := appendBlockV1(nil, recs[i:i+1024])
		if err != nil {
			t.Fatal(err)
		}
		b2, err := appendBlock(nil, recs[i:i+1024])
		if err != nil {
			t.Fatal(err)
		}
		v1, v2 = v1+len(b1), v2+len(b2)
	}
	if r := float64(v2) / float64(v1); r > 0.85 {
		t.Fatalf("layout 2 takes %.2f× the bytes of layout 1 (%d against %d)", r, v2, v1)
	}
}

// layout2Columns takes a layout-2 block apart into what precedes its
// columns (magic to filter) and its columns, decompressed.
func layout2Columns(t *testing.T, b []byte) ([]byte, [numBlockColumns][]byte) {
	t.Helper()
	h, err := parseBlockHeader(b)
	if err != nil || h.layout != 2 {
		t.Fatalf("not a layout-2 block: %v", err)
	}
	head := b[:len(b)-len(h.body)]
	head = head[:len(head)-len(binary.AppendUvarint(nil, uint64(h.size)))]
	var cols [numBlockColumns][]byte
	body := h.body
	for i := range cols {
		n, k := binary.Uvarint(body)
		z, m := binary.Uvarint(body[k:])
		frame := body[k+m : k+m+int(z)]
		body = body[k+m+int(z):]
		if n > 0 {
			if cols[i], err = blockDecoder().DecodeAll(frame, make([]byte, 0, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return slices.Clone(head), cols
}

// layout2Block puts a layout-2 block together from its parts, declaring
// declared as the columns' total and each column's own length.
func layout2Block(head []byte, cols [numBlockColumns][]byte, declared int) []byte {
	b := binary.AppendUvarint(slices.Clone(head), uint64(declared))
	for _, c := range cols {
		b = binary.AppendUvarint(b, uint64(len(c)))
		if len(c) == 0 {
			b = append(b, 0)
			continue
		}
		frame := blockEncoder().EncodeAll(c, nil)
		b = append(binary.AppendUvarint(b, uint64(len(frame))), frame...)
	}
	return b
}

// Hostile blocks of layout 2: lengths that lie, at the block's level, a
// column's or a record's, kinds and shapes out of range, bytes no record
// claims, and a column frame that inflates far past its declared length.
// Each is refused, the last without allocating what it would inflate to.
func TestDecodeBlockRefusesHostileLayout2Blocks(t *testing.T) {
	good, err := appendBlock(nil, oddBlockRecords(t))
	if err != nil {
		t.Fatal(err)
	}
	head, cols := layout2Columns(t, good)
	total := 0
	for _, c := range cols {
		total += len(c)
	}
	if len(cols[colLens]) == 0 {
		t.Fatal("the odd records store no string by its length: the test needs one")
	}
	if _, err := decodeBlock(layout2Block(head, cols, total)); err != nil {
		t.Fatalf("the rebuilt good block: %v", err)
	}
	with := func(c blockColumn, change func([]byte) []byte) [numBlockColumns][]byte {
		out := cols
		out[c] = change(slices.Clone(cols[c]))
		return out
	}
	sum := func(cs [numBlockColumns][]byte) int {
		n := 0
		for _, c := range cs {
			n += len(c)
		}
		return n
	}
	cases := map[string][]byte{
		"declared total short":    layout2Block(head, cols, total-1),
		"declared total long":     layout2Block(head, cols, total+1),
		"declared beyond maximum": layout2Block(head, cols, maxBlockBytes+1),
		"bytes after the columns": append(layout2Block(head, cols, total), 0),
		"the last column cut off": layout2Block(head, cols, total)[:len(layout2Block(head, cols, total))-3],
	}
	for name, cs := range map[string][numBlockColumns][]byte{
		"a kind out of range":          with(colKinds, func(b []byte) []byte { b[0] = 9; return b }),
		"a shape past the tokens":      with(colShapes, func(b []byte) []byte { b[0] = byte(rawTokens + 1); return b }),
		"a tail shorter than its head": with(colTails, func(b []byte) []byte { return b[:len(b)-1] }),
		"a token without its space":    with(colTok0+2, func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(" "), []byte("_")) }),
		"verbatim bytes no one claims": with(colVerbatim, func(b []byte) []byte { return append(b, 2, 'x') }),
		"lengths missing":              with(colLens, func(b []byte) []byte { return nil }),
		"a length past the raw line":   with(colLens, func(b []byte) []byte { return binary.AppendUvarint(b[:0], 1<<40) }),
		"trailers cut short":           with(colTrailers, func(b []byte) []byte { return b[:len(b)-1] }),
		"a head cut short":             with(colHeads, func(b []byte) []byte { return b[:len(b)-1] }),
		"IDs followed by more":         with(colIDs, func(b []byte) []byte { return append(b, 0) }),
		"a kind missing":               with(colKinds, func(b []byte) []byte { return b[:len(b)-1] }),
	} {
		cases[name] = layout2Block(head, cs, sum(cs))
	}
	for name, b := range cases {
		if _, err := decodeBlock(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
		if _, err := decodeBlockFor(b, []byte("message")); err == nil {
			t.Errorf("%s: decoded for a word", name)
		}
	}
	// a tails column that declares 1 000 bytes and inflates to almost the
	// most a block may hold
	frame := inflatingFrame(t)
	bomb := binary.AppendUvarint(slices.Clone(head), 1000)
	for c := range cols {
		if blockColumn(c) == colTails {
			bomb = binary.AppendUvarint(binary.AppendUvarint(bomb, 1000), uint64(len(frame)))
			bomb = append(bomb, frame...)
			continue
		}
		bomb = append(bomb, 0, 0)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := decodeBlock(bomb); err == nil {
		t.Fatal("a column inflating past its declared length decoded")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("refusing a %d-byte block that declares 1000 bytes allocated %d MiB", len(bomb), grew>>20)
	}
}

// syslogEntries makes n records of RFC 5424 lines, as the syslog parser
// stores them, in slice s of window w, partition p.
func syslogEntries(w record.Window, s uint8, p record.Partition, n int, rng *rand.Rand) []Entry {
	var parser syslog.Parser
	es := make([]Entry, n)
	for i := range es {
		id := idIn(sliceStart(w, s)+rng.Int64N(SliceMillis), p)
		line := fmt.Sprintf("<13>1 %s host-%d app %d ID%d - message %d word%d", id.Time().Format(time.RFC3339Nano),
			rng.IntN(5), 100+rng.IntN(4), rng.IntN(9), i, rng.IntN(20))
		var r record.Record
		parser.Parse([]byte(line), id.Time(), &r)
		r.ID = id
		es[i] = Entry{ID: id, Data: r.AppendEncode(nil)}
	}
	return es
}

// blockLayouts counts the blocks of each layout in the store, loose and
// moved.
func blockLayouts(t *testing.T, db *DB) (layout1, layout2 int) {
	t.Helper()
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'r'}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if _, _, ok := blockRange(it.Item().Key()); !ok {
				continue
			}
			err := it.Item().Value(func(v []byte) error {
				switch v[0] {
				case blockMagic:
					layout1++
				case blockMagic2:
					layout2++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return layout1, layout2
}

// TestAStoreSealedInLayout1ReadsAndSealsOn: a store a logmesh before format 6
// sealed (blocks of layout 1, marked format 5) opens, reads every record
// through every reader, takes late records into its sealed slices, whose
// blocks are then written in layout 2 beside the old ones, and is marked
// format 6 from then on.
func TestAStoreSealedInLayout1ReadsAndSealsOn(t *testing.T) {
	dir := t.TempDir()
	writeBlock = appendBlockV1
	t.Cleanup(func() { writeBlock = appendBlock })
	db := openTest(t, dir, func(c *Config) { c.SealBlockRecords = 16 })
	rng := rand.New(rand.NewPCG(61, 62))
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	var es []Entry
	for _, s := range []uint8{5, 6, 40} {
		for _, p := range []record.Partition{3, 77, 201} {
			es = append(es, syslogEntries(w, s, p, 60+rng.IntN(100), rng)...)
		}
	}
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	for _, s := range []uint8{5, 6, 40} {
		if err := db.sealWindow(w, s, s+1); err != nil {
			t.Fatal(err)
		}
	}
	updateInCommitter(t, db, func(txn *badger.Txn) error { return txn.Set(metaKey(metaFormat), []byte("5")) })
	if l1, l2 := blockLayouts(t, db); l1 == 0 || l2 != 0 {
		t.Fatalf("the old version's store holds %d blocks of layout 1 and %d of layout 2", l1, l2)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	writeBlock = appendBlock
	db = openTest(t, dir, func(c *Config) { c.SealBlockRecords = 16 })
	if got := db.storedFormat.Load(); got != 5 {
		t.Fatalf("the old store opens as format %d, not 5", got)
	}
	compareReads(t, "layout 1, reopened", readEverything(t, reference(t, es), es, 7), readEverything(t, db, es, 7))
	var late []Entry
	for _, s := range []uint8{5, 40} {
		late = append(late, syslogEntries(w, s, 77, 30, rng)...)
	}
	if _, err := db.Write(context.Background(), late, OriginLocal); err != nil {
		t.Fatal(err)
	}
	es = append(es, late...)
	for _, s := range []uint8{5, 40} {
		if err := db.sealWindow(w, s, s+1); err != nil {
			t.Fatal(err)
		}
	}
	l1, l2 := blockLayouts(t, db)
	if l1 == 0 || l2 == 0 {
		t.Fatalf("after late records were sealed: %d blocks of layout 1 and %d of layout 2, want both", l1, l2)
	}
	if v, _ := db.GetMeta(metaFormat); string(v) != strconv.Itoa(formatVersion) || formatVersion < 6 {
		t.Fatalf("a store with blocks of layout 2 is marked format %q, want %d (at least 6)", v, formatVersion)
	}
	want := readEverything(t, reference(t, es), es, 8)
	compareReads(t, "both layouts", want, readEverything(t, db, es, 8))
	checkRunRules(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, func(c *Config) { c.SealBlockRecords = 16 })
	compareReads(t, "both layouts, reopened", want, readEverything(t, db, es, 8))
}

// BenchmarkBlockLayouts measures layout 2 against layout 1 in the same run,
// on 65 536 sample lines in blocks of 1 024: the bytes a line takes, the
// time to encode, to decode whole and to decode for a 1% word (the matcher
// not included), each per line, and layout 2's as a ratio of layout 1's.
func BenchmarkBlockLayouts(b *testing.B) {
	const n, size = 65536, 1024
	recs := sampleBlockRecords(n, 2000)
	word := []byte("kernel")
	encoders := []struct {
		name string
		enc  func([]byte, []blockRecord) ([]byte, error)
	}{{"layout=1", appendBlockV1}, {"layout=2", appendBlock}}
	type figures struct{ bytes, encode, decode, decodeWord float64 }
	got := make([]figures, len(encoders))
	for li, e := range encoders {
		var blocks [][]byte
		for i := 0; i < n; i += size {
			blk, err := e.enc(nil, recs[i:i+size])
			if err != nil {
				b.Fatal(err)
			}
			blocks = append(blocks, blk)
			got[li].bytes += float64(len(blk)) / n
		}
		b.Run(e.name+"/encode", func(b *testing.B) {
			for b.Loop() {
				for i := 0; i < n; i += size {
					if _, err := e.enc(nil, recs[i:i+size]); err != nil {
						b.Fatal(err)
					}
				}
			}
			got[li].encode = float64(b.Elapsed().Nanoseconds()) / float64(b.N) / n
			b.ReportMetric(got[li].bytes, "B/line")
			b.ReportMetric(got[li].encode, "ns/line")
		})
		for _, w := range [][]byte{nil, word} {
			name := "/decode"
			if w != nil {
				name = "/decode-word"
			}
			b.Run(e.name+name, func(b *testing.B) {
				for b.Loop() {
					for _, blk := range blocks {
						if _, err := decodeBlockFor(blk, w); err != nil {
							b.Fatal(err)
						}
					}
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / n
				if w == nil {
					got[li].decode = ns
				} else {
					got[li].decodeWord = ns
				}
				b.ReportMetric(ns, "ns/line")
			})
		}
	}
	if got[0].encode > 0 && got[0].decode > 0 && got[0].decodeWord > 0 {
		b.Logf("layout 2 against layout 1: %.2f× the bytes (%.1f against %.1f B/line), %.2f× the encoding time, %.2f× the decoding, %.2f× the decoding for a word",
			got[1].bytes/got[0].bytes, got[1].bytes, got[0].bytes, got[1].encode/got[0].encode,
			got[1].decode/got[0].decode, got[1].decodeWord/got[0].decodeWord)
	}
}

// TestLayout2HoldsWhatLayout1Held: a record as large as a block of layout 1
// may hold fits a block of layout 2 (whose columns take a few bytes a record
// more), so no slice sealed before can fail to be sealed again. (Written by
// review.)
func TestLayout2HoldsWhatLayout1Held(t *testing.T) {
	id := record.NewGenerator(func() time.Time { return time.UnixMilli(1_780_000_000_000) }).Next()
	build := func(rawLen int) []byte {
		r := record.Record{ID: id, Raw: make([]byte, rawLen)}
		return r.AppendEncode(nil)
	}
	lo, hi := maxBlockBytes-200, maxBlockBytes // the largest raw line layout 1 takes
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, err := appendBlockV1(nil, []blockRecord{{ID: id, Data: build(mid)}}); err == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	recs := []blockRecord{{ID: id, Data: build(lo)}}
	b, err := appendBlock(nil, recs)
	if err != nil {
		t.Fatalf("a record of %d bytes that layout 1 holds: layout 2: %v", len(recs[0].Data), err)
	}
	got, err := decodeBlock(b)
	if err != nil || !bytes.Equal(got.Data[0], recs[0].Data) {
		t.Fatalf("the record does not come back: %v", err)
	}
}

// TestDecodingLayout2AllocatesWhatItDeclares: a decoder allocates the
// columns a block declares, an ID and a slice header for each record it
// counts, and the records it returns; no more, whatever the block holds.
// The first version kept 208 bytes of pieces for every record before it
// put any together: 15 MB for a hostile block of 330 bytes, 18 MB for a
// block of 65 536 empty records decoded for a word none of them holds.
// (Found by review.)
func TestDecodingLayout2AllocatesWhatItDeclares(t *testing.T) {
	const n = maxBlockRecords
	// IDs and slice headers take 40 bytes a record; the rest of the room is
	// for what other goroutines of the test binary allocate meanwhile (the
	// counts are the process's), and the least of three decodes is taken.
	// The first version took 208 bytes a record more.
	bound := func(declared, returned int) uint64 {
		return uint64(declared + returned + 64*n + 4<<20)
	}
	allocated := func(decode func() error) (uint64, error) {
		least := uint64(math.MaxUint64)
		var err error
		for range 3 {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err = decode()
			runtime.ReadMemStats(&after)
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		return least, err
	}

	// hostile: IDs, shapes and kinds for n records, nothing else
	var cols [numBlockColumns][]byte
	ids := binary.AppendUvarint(nil, 1)
	ids = append(ids, 1, 2, 3, 4, 5, 6)
	for i := range n {
		ms := byte(0)
		if i%128 == 0 {
			ms = 1
		}
		ids = append(ids, ms, 0, byte(i%128))
	}
	cols[colIDs], cols[colShapes], cols[colKinds] = ids, make([]byte, n), make([]byte, 6*n)
	total := len(cols[colIDs]) + len(cols[colShapes]) + len(cols[colKinds])
	head := binary.AppendUvarint(binary.AppendUvarint([]byte{blockMagic2}, n), 1)
	b := layout2Block(append(head, make([]byte, 8)...), cols, total)
	grew, err := allocated(func() error { _, err := decodeBlock(b); return err })
	if err == nil {
		t.Fatal("a block of records without heads decoded")
	}
	if grew > bound(total, 0) {
		t.Fatalf("refusing a block of %d bytes declaring %d column bytes allocated %d bytes", len(b), total, grew)
	}

	// valid: n empty records, decoded for a word none holds
	gen := record.NewGenerator(func() time.Time { return time.UnixMilli(1_780_000_000_000) })
	recs := make([]blockRecord, n)
	for i := range recs {
		r := record.Record{ID: gen.Next()}
		recs[i] = blockRecord{ID: r.ID, Data: r.AppendEncode(nil)}
	}
	if b, err = appendBlock(nil, recs); err != nil {
		t.Fatal(err)
	}
	h, err := parseBlockHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	grew, err = allocated(func() error { _, err := decodeBlockFor(b, []byte("zzz")); return err })
	if err != nil {
		t.Fatal(err)
	}
	if grew > bound(h.size, 0) {
		t.Fatalf("decoding %d declared column bytes for a word no record holds allocated %d bytes", h.size, grew)
	}
}
