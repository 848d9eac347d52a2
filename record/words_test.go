package record

import (
	"fmt"
	"testing"
	"time"
)

func TestEachWord(t *testing.T) {
	var got []string
	EachWord([]byte("<13>1 host.example app[42]: user=bob OK_done ünï"), func(w []byte) { got = append(got, string(w)) })
	want := []string{"13", "1", "host", "example", "app", "42", "user", "bob", "OK_done", "ünï"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("words %q, want %q", got, want)
	}
}

func TestContainsWord(t *testing.T) {
	for _, c := range []struct {
		b, term string
		want    bool
	}{
		{"an error: disk", "error", true},
		{"error", "error", true},
		{"errors happen", "error", false},
		{"stderr closed", "err", false},
		{"stderr and err", "err", true},     // a later occurrence counts
		{"errorerror error", "error", true}, // overlapping candidates
		{"connection refused by peer", "connection refused", true},
		{"connection refusedx", "connection refused", false},
		{"see [error] here", "[error]", true},
		{"x[error]y", "[error]", true}, // non-word ends need no boundary
		{"Error", "error", false},      // case-sensitive
		{"grüße", "grü", false},        // UTF-8 letters are word bytes
		{"", "a", false},
		{"abc", "", false},
	} {
		if got := ContainsWord([]byte(c.b), []byte(c.term)); got != c.want {
			t.Errorf("ContainsWord(%q, %q) = %v, want %v", c.b, c.term, got, c.want)
		}
	}
}

// naiveContainsWord checks every position.
func naiveContainsWord(b, term []byte) bool {
	if len(term) == 0 {
		return false
	}
	for i := 0; i+len(term) <= len(b); i++ {
		if string(b[i:i+len(term)]) != string(term) {
			continue
		}
		end := i + len(term)
		if WordByte(term[0]) && i > 0 && WordByte(b[i-1]) {
			continue
		}
		if WordByte(term[len(term)-1]) && end < len(b) && WordByte(b[end]) {
			continue
		}
		return true
	}
	return false
}

// FuzzContainsWord: ContainsWord agrees with a check of every position, and a
// term found as a word is found as a substring.
func FuzzContainsWord(f *testing.F) {
	f.Add([]byte("an error: errors stderr"), []byte("error"))
	f.Add([]byte("aaa a"), []byte("a"))
	f.Fuzz(func(t *testing.T, b, term []byte) {
		got := ContainsWord(b, term)
		if want := naiveContainsWord(b, term); got != want {
			t.Fatalf("ContainsWord(%q, %q) = %v, a check of every position says %v", b, term, got, want)
		}
	})
}

// wordByteRanges is the definition of a word byte, as ranges (and
// WordByte before its table).
func wordByteRanges(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

func TestWordByteIsItsDefinition(t *testing.T) {
	for c := range 256 {
		if got, want := WordByte(byte(c)), wordByteRanges(byte(c)); got != want {
			t.Fatalf("WordByte(%#x) = %v, want %v", c, got, want)
		}
	}
}

// eachWordRanges is EachWord with the ranges: the baseline of
// BenchmarkEachWord.
func eachWordRanges(b []byte, fn func(w []byte)) {
	start := -1
	for i, c := range b {
		if wordByteRanges(c) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			fn(b[start:i])
			start = -1
		}
	}
	if start >= 0 {
		fn(b[start:])
	}
}

// BenchmarkEachWord takes syslog lines apart into words with the table
// (EachWord) and with the ranges, alternating in each iteration, and
// reports ns/line of each and their ratio.
func BenchmarkEachWord(b *testing.B) {
	line := []byte(`<165>1 2026-12-07T19:20:16.123456Z web-17.example.net nginx 2041 access [req@32473 id="a1b2" path="/api/v1/users"] GET /api/v1/users/42 200 1532 "Mozilla/5.0 (X11; Linux x86_64)" upstream_time=0.004`)
	var n [2]int
	count := func(w []byte) { n[0] += len(w) }
	count2 := func(w []byte) { n[1] += len(w) }
	const lines = 1000
	var took [2]time.Duration
	for b.Loop() {
		start := time.Now()
		for range lines {
			EachWord(line, count)
		}
		took[0] += time.Since(start)
		start = time.Now()
		for range lines {
			eachWordRanges(line, count2)
		}
		took[1] += time.Since(start)
	}
	if n[0] != n[1] {
		b.Fatalf("the two took apart %d and %d bytes of words", n[0], n[1])
	}
	total := float64(b.N) * lines
	b.ReportMetric(float64(took[0].Nanoseconds())/total, "table-ns/line")
	b.ReportMetric(float64(took[1].Nanoseconds())/total, "ranges-ns/line")
	b.ReportMetric(float64(took[0])/float64(took[1]), "table/ranges")
}
