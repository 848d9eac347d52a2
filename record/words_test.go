package record

import (
	"fmt"
	"testing"
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
