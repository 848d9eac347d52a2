package index

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
)

// Adopted from a review of decodeBlockFor (it found nothing broken): a word
// decode checked against the matcher's rule for every term, over what the
// syslog parser makes of odd lines, and word scans of a sealed store against
// an unsealed one.

// TestAWordDecodeKeepsWhatTheMatcherKeepsForEveryTerm: every term a word query could ask for (every word, every two-word phrase,
// every substring up to 12 bytes, of every record's message and raw line),
// over records from the syslog parser (RFC 5424, RFC 3164, BOM, malformed,
// invalid UTF-8, multi-line, very long, escapes) and records without raw
// bytes with fields: decodeBlockFor keeps every record the matcher keeps,
// byte-identical, and all IDs.
func TestAWordDecodeKeepsWhatTheMatcherKeepsForEveryTerm(t *testing.T) {
	lines := []string{
		"<13>1 2026-12-04T10:00:00Z host app 12 ID7 [ex@1 a=\"x\\\"y\\]z\"] \xef\xbb\xbfhello zebra world",
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		"<34>Oct 11 22:14:15 mymachine su[123]: \xef\xbb\xbfBOM msg zebra",
		"garbage line without pri zebra",
		"<999>bad pri zebra",
		"<13>1 bad-ts host app - - - msg zebra",
		"<13>1 2026-12-04T10:00:00Z host app - - [unterminated zebra",
		"<13>1 2026-12-04T10:00:00Z h a - - - line one\nline two zebra\r\nthree",
		"<13>1 2026-12-04T10:00:00Z h a - - - bad utf8 \xff\xfe zebra \xc3",
		"<13>Dec  4 10:00:00 host app: " + strings.Repeat("long zebra ", 500),
		"<13>1 2026-12-04T10:00:00Z h a - - - \xef\xbb\xbf",
		"<13>1 2026-12-04T10:00:00Z - - - - -",
		"",
		"\xef\xbb\xbfzebra",
		"<13>Dec  4 10:00:00 zebra",
		"<13>Dec  4 10:00:00 host zebra:zebra",
		"<13>1 2026-12-04T10:00:00Z host app - - - msg\x00nul zebra",
		"<13>1 2026-12-04T10:00:00.123456789Z host app - - - frac zebra",
		"<13>zebra",
		"<13>1 - - - - - - -",
	}
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := start
	gen := record.NewGenerator(func() time.Time { return now })
	var p syslog.Parser
	var recs []blockRecord
	for i, line := range lines {
		now = start.Add(time.Duration(i) * time.Millisecond)
		var r record.Record
		p.Parse([]byte(line), now, &r)
		r.Peer = "p1"
		r.ID = gen.Next()
		recs = append(recs, blockRecord{ID: r.ID, Data: r.AppendEncode(nil)})
		// the same text without raw bytes, with a field holding it
		now = now.Add(500 * time.Microsecond)
		r2 := record.Record{Hostname: "h", AppName: "a", Message: line, EventTime: now, Peer: "p1"}
		r2.SetField("f", "zebra "+line)
		r2.ID = gen.Next()
		recs = append(recs, blockRecord{ID: r2.ID, Data: r2.AppendEncode(nil)})
		// the message a reference into raw, raw prepended/appended
		r3 := record.Record{Raw: []byte("pre " + line + " post"), Message: line, Hostname: "host", Peer: "p1"}
		r3.ID = gen.Next()
		recs = append(recs, blockRecord{ID: r3.ID, Data: r3.AppendEncode(nil)})
	}
	for _, blocks := range [][]blockRecord{recs, recs[:1], recs[len(recs)-1:]} {
		blk, err := appendBlock(nil, blocks)
		if err != nil {
			t.Fatal(err)
		}
		all, err := decodeBlock(blk)
		if err != nil {
			t.Fatal(err)
		}
		terms := map[string]bool{" ": true, "zebra": true, "zebra world": true, "\xef\xbb\xbf": true}
		for _, r := range blocks {
			var v record.View
			if err := v.Reset(r.Data); err != nil {
				t.Fatal(err)
			}
			for _, s := range [][]byte{v.Message(), v.Raw(), v.Hostname(), v.AppName()} {
				var ws []string
				record.EachWord(s, func(w []byte) { ws = append(ws, string(w)) })
				for j, w := range ws {
					terms[w] = true
					if j > 0 {
						terms[ws[j-1]+" "+w] = true
					}
				}
				for i := 0; i < len(s) && i < 300; i++ {
					for n := 1; n <= 12 && i+n <= len(s); n++ {
						terms[string(s[i:i+n])] = true
					}
				}
			}
		}
		for term := range terms {
			word := []byte(term)
			got, err := decodeBlockFor(blk, word)
			if err != nil {
				t.Fatalf("%q: %v", term, err)
			}
			for i := range all.IDs {
				if got.IDs[i] != all.IDs[i] {
					t.Fatalf("%q: ID %d differs", term, i)
				}
				if got.Data[i] != nil && !bytes.Equal(got.Data[i], all.Data[i]) {
					t.Fatalf("%q: record %d kept but differs", term, i)
				}
				if got.Data[i] == nil && len(word) > 0 && holdsWord(t, all.Data[i], word) {
					t.Fatalf("%q: record %d holds it and was left out", term, i)
				}
			}
		}
	}
}

// TestWordScansOfASealedStoreAnswerAsALooseOne: a sealed store answers word scans (forward, reverse, limits, ranges cut
// at the edges of records left out, workers) and counts as an unsealed one.
func TestWordScansOfASealedStoreAnswerAsALooseOne(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var p syslog.Parser
	var es []Entry
	for i := 0; i < 600; i++ {
		at := start.Add(time.Duration(i) * 37 * time.Millisecond)
		g := record.NewGenerator(func() time.Time { return at })
		var r record.Record
		switch i % 4 {
		case 0:
			p.Parse([]byte("<34>Oct 11 22:14:15 mymachine su: msg "+string(rune('a'+i%26))+" zebra"), at, &r)
		case 1:
			p.Parse([]byte("garbage "+string(rune('a'+i%26))), at, &r)
		case 2:
			r = record.Record{Hostname: "h", Message: "literal zebra x"}
			if i%3 == 0 {
				r.Message = "literal zebras x"
			}
		default:
			r = record.Record{Hostname: "h", Message: "none"}
			r.SetField("k", "zebra")
		}
		r.ID = g.Next()
		es = append(es, Entry{ID: r.ID, Data: r.AppendEncode(nil)})
	}
	sealed := openTest(t, t.TempDir(), func(c *Config) { c.SealBlockRecords = 7 })
	ref := openTest(t, t.TempDir())
	for _, db := range []*DB{sealed, ref} {
		if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
			t.Fatal(err)
		}
	}
	sealAll(t, sealed, 7)
	// the blocks are decoded for the word: some records never reach Match
	decoded := 0
	err := sealed.Scan(context.Background(), ScanOptions{Word: []byte("zebra"), Match: func(record.ID, []byte) bool { decoded++; return false }},
		func(record.ID, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if decoded == 0 || decoded >= len(es) {
		t.Fatalf("%d of %d records reached Match under the word", decoded, len(es))
	}
	word := []byte("zebra")
	match := func(_ record.ID, data []byte) bool {
		var v record.View
		if v.Reset(data) != nil {
			return false
		}
		return record.ContainsWord(v.Message(), word) || record.ContainsWord(v.Raw(), word)
	}
	ids := sortedIDs(es)
	run := func(db *DB, opts ScanOptions, stop int) string {
		var b strings.Builder
		n := 0
		err := db.Scan(context.Background(), opts, func(id record.ID, data []byte) error {
			b.WriteString(id.String())
			b.Write(data)
			if n++; stop > 0 && n >= stop {
				return ErrStop
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	answered := 0
	for k := 0; k < 40; k++ {
		a, z := ids[(k*13)%len(ids)].Millis(), ids[(k*29+5)%len(ids)].Millis()
		if a > z {
			a, z = z, a
		}
		for _, rev := range []bool{false, true} {
			for _, lim := range []int{0, 1, 3} {
				for _, w := range []int{1, 2} {
					opts := ScanOptions{FromMillis: a, ToMillis: z, Reverse: rev, Match: match, Word: word, Limit: lim, Workers: w}
					g, want := run(sealed, opts, lim), run(ref, opts, lim)
					if g != want {
						t.Fatalf("range %d rev=%v limit=%d workers=%d: sealed and loose differ", k, rev, lim, w)
					}
					if want != "" {
						answered++
					}
				}
			}
		}
		opts := ScanOptions{FromMillis: a, ToMillis: z, Match: match, Word: word}
		n1, err1 := sealed.Count(context.Background(), opts)
		n2, err2 := ref.Count(context.Background(), opts)
		if err1 != nil || err2 != nil || n1 != n2 {
			t.Fatalf("count %d: sealed %d (%v), loose %d (%v)", k, n1, err1, n2, err2)
		}
	}
	if answered < 100 {
		t.Fatalf("only %d of 480 scans found anything: the ranges miss the records", answered)
	}
}
