package index

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
	"github.com/logmesh/logmesh/syslog"
)

// wordBlockRecords returns n records as sampleBlockRecords does, word placed
// in every hundredth: alternately in the raw line of a parsed record, in
// the literal message of one without raw bytes (as the HTTP API stores
// them), and — where no word query may find it — only in a field, or only
// inside a longer word.
func wordBlockRecords(n int, word string) []blockRecord {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := start
	gen := record.NewGenerator(func() time.Time { return now })
	lines := sample.New(11)
	var p syslog.Parser
	out := make([]blockRecord, n)
	for i := range out {
		now = start.Add(time.Duration(i) * time.Millisecond)
		var r record.Record
		line := lines.RFC5424(now)
		switch {
		case i%100 == 0:
			p.Parse([]byte(line+" "+word), now, &r)
		case i%100 == 50:
			r = record.Record{Hostname: "web-3", AppName: "api", Message: fmt.Sprintf("order %d: %s paid", i, word), EventTime: now}
		case i%100 == 25:
			r = record.Record{Hostname: "web-3", AppName: "api", Message: fmt.Sprintf("order %d paid", i), EventTime: now}
			r.SetField("note", word)
		case i%100 == 75:
			p.Parse([]byte(line+" "+word+"s"), now, &r)
		case i%10 == 9:
			r = record.Record{Hostname: "web-3", AppName: "api", Message: fmt.Sprintf("order %d paid", i), EventTime: now}
		default:
			p.Parse([]byte(line), now, &r)
		}
		r.Transport, r.Peer = record.TransportTCP, "p1"
		r.ID = gen.Next()
		out[i] = blockRecord{ID: r.ID, Data: r.AppendEncode(nil)}
	}
	return out
}

// holdsWord is the rule of a query's word= (query.Query.Matcher).
func holdsWord(t testing.TB, data, word []byte) bool {
	var v record.View
	if err := v.Reset(data); err != nil {
		t.Fatalf("a decoded record is no record: %v", err)
	}
	return record.ContainsWord(v.Message(), word) || record.ContainsWord(v.Raw(), word)
}

// TestAWordDecodeLeavesOutOnlyRecordsWithoutTheWord: a block decoded for a
// word query (decodeBlockFor) keeps, byte for byte, every record holding the
// word in its raw line or in a literal message, keeps every ID, and leaves
// out most of the rest.
func TestAWordDecodeLeavesOutOnlyRecordsWithoutTheWord(t *testing.T) {
	const n = 3000
	word := []byte("zebracorn")
	blk, err := appendBlock(nil, wordBlockRecords(n, string(word)))
	if err != nil {
		t.Fatal(err)
	}
	all, err := decodeBlock(blk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBlockFor(blk, word)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.IDs) != n || len(got.Data) != n {
		t.Fatalf("%d IDs and %d records of %d", len(got.IDs), len(got.Data), n)
	}
	holding, kept, literal := 0, 0, 0
	for i, data := range all.Data {
		if got.IDs[i] != all.IDs[i] {
			t.Fatalf("ID %d differs", i)
		}
		if got.Data[i] != nil {
			kept++
			if !bytes.Equal(got.Data[i], data) {
				t.Fatalf("record %d kept, but not as decodeBlock has it", i)
			}
		}
		if !holdsWord(t, data, word) {
			continue
		}
		holding++
		var v record.View
		_ = v.Reset(data)
		if len(v.Raw()) == 0 {
			literal++
		}
		if got.Data[i] == nil {
			t.Fatalf("record %d holds %q (raw bytes: %d) and was left out", i, word, len(v.Raw()))
		}
	}
	if holding != 2*n/100 || literal != n/100 {
		t.Fatalf("%d records hold the word, %d of them in a literal message: the sample changed", holding, literal)
	}
	if kept > 2*holding {
		t.Fatalf("%d records kept for %d holding the word: the others should be left out", kept, holding)
	}
}

// FuzzDecodeBlockForWord: whatever the lines (stored as records with raw
// bytes or as literal messages) and the word, a block decoded for the word
// keeps every record holding it, as decodeBlock has it. FuzzDecodeBlock
// gives it arbitrary bytes.
func FuzzDecodeBlockForWord(f *testing.F) {
	f.Add([]byte("<13>1 2026-12-04T10:00:00Z h a - - - a zebracorn\nzebracorn\nzebracorns\n<14>x"), []byte("zebracorn"), uint16(3))
	f.Add([]byte("a b\nb a\n"), []byte(" "), uint16(0))
	f.Fuzz(func(t *testing.T, data, word []byte, step uint16) {
		gen := record.NewGenerator(func() time.Time { return time.UnixMilli(1_780_000_000_000 + int64(step)) })
		var recs []blockRecord
		for i, line := range bytes.Split(data, []byte("\n")) {
			r := record.Record{ID: gen.Next(), Message: string(line), Peer: "p"}
			if i%2 == int(step%2) {
				r.Raw = line
			}
			if i%3 == 2 {
				r.SetField("k", string(word))
			}
			recs = append(recs, blockRecord{ID: r.ID, Data: r.AppendEncode(nil)})
		}
		b, err := appendBlock(nil, recs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeBlockFor(b, word)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if got.IDs[i] != r.ID {
				t.Fatalf("ID %d differs", i)
			}
			if got.Data[i] != nil && !bytes.Equal(got.Data[i], r.Data) {
				t.Fatalf("record %d kept, but not as stored", i)
			}
			if got.Data[i] == nil && (len(word) == 0 || holdsWord(t, r.Data, word)) {
				t.Fatalf("record %d holds %q and was left out", i, word)
			}
		}
	})
}

// BenchmarkBlockWordPerLine: decoding blocks of 1024 records for a 1% word
// against decoding them whole, as a word query over sealed slices did
// (every record put together and decoded), in the same run: ns per line
// of each and their ratio.
func BenchmarkBlockWordPerLine(b *testing.B) {
	const n, size = 65536, 1024
	word := []byte("zebracorn")
	recs := wordBlockRecords(n, string(word))
	var blocks [][]byte
	for i := 0; i < n; i += size {
		blk, err := appendBlock(nil, recs[i:min(i+size, n)])
		if err != nil {
			b.Fatal(err)
		}
		blocks = append(blocks, blk)
	}
	match := func(data []byte) bool { return holdsWord(b, data, word) }
	var whole, forWord time.Duration
	for b.Loop() {
		hits := [2]int{}
		t0 := time.Now()
		for _, blk := range blocks {
			d, err := decodeBlock(blk)
			if err != nil {
				b.Fatal(err)
			}
			for _, data := range d.Data {
				if match(data) {
					hits[0]++
				}
			}
		}
		t1 := time.Now()
		for _, blk := range blocks {
			d, err := decodeBlockFor(blk, word)
			if err != nil {
				b.Fatal(err)
			}
			for _, data := range d.Data {
				if data != nil && match(data) {
					hits[1]++
				}
			}
		}
		whole, forWord = whole+t1.Sub(t0), forWord+time.Since(t1)
		if hits[0] == 0 || hits[0] != hits[1] {
			b.Fatalf("%d lines hold %q decoded whole, %d decoded for the word", hits[0], word, hits[1])
		}
	}
	b.ReportMetric(float64(whole.Nanoseconds())/float64(b.N)/n, "whole-ns/line")
	b.ReportMetric(float64(forWord.Nanoseconds())/float64(b.N)/n, "word-ns/line")
	b.ReportMetric(float64(forWord)/float64(whole), "×whole")
}

// TestAWordDecodeKeepsExactlyTheRecordsWhoseLinesHoldIt: where every record
// keeps its raw line and the word has no space, a layout-2 block decoded for
// the word keeps exactly the records whose raw line holds its bytes — also
// where the word lies across the end of one record's piece and the start of
// the next in a column (neither is kept), where it occurs many times over
// in one record, and in records one after the other.
func TestAWordDecodeKeepsExactlyTheRecordsWhoseLinesHoldIt(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	gen := record.NewGenerator(func() time.Time { return now })
	const pre = "<14>1 2026-12-07T10:00:00Z host app 12 m - "
	lines := []string{
		pre + "see zebra", "cornfield", // "zebracorn" across two tails
		pre + "zebracorn", pre + "zebracornzebracorn", "zebracorn", "x zebracorn",
		"<14>1 2026-12-07T10:00:00Z zebracorn app 12 m - in the hostname",
		"<14>1 2026-12-07T10:00:00Z host zebra corn 12 m - apart",
		pre + "nothing", pre + "aaaa", pre + "a", "aa", "a", "a a", pre + "zebracor", "ncorn",
	}
	var recs []blockRecord
	var p syslog.Parser
	for _, l := range lines {
		var r record.Record
		p.Parse([]byte(l), now, &r)
		r.ID = gen.Next()
		recs = append(recs, blockRecord{ID: r.ID, Data: r.AppendEncode(nil)})
	}
	blk, err := appendBlock(nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"zebracorn", "aa", "a", "corn", "zebra", "m", "host", "-", "2026-12-07T10:00:00Z", "q"} {
		got, err := decodeBlockFor(blk, []byte(word))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range lines {
			if want := strings.Contains(l, word); (got.Data[i] != nil) != want {
				t.Errorf("word %q, line %q: kept %v, want %v", word, l, got.Data[i] != nil, want)
			}
			if got.Data[i] != nil && !bytes.Equal(got.Data[i], recs[i].Data) {
				t.Errorf("word %q, line %q: kept, but not as stored", word, l)
			}
		}
	}
}
