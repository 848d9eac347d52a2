package record

import "bytes"

// Words are what word queries (query.Query.Word) match and what the store's
// block filters index: maximal runs of ASCII letters, digits and '_', and of
// bytes >= 0x80 (so a UTF-8 letter never splits a word). Matching is
// case-sensitive, like the substring filter.

// WordByte reports whether c is part of a word.
func WordByte(c byte) bool { return wordBytes[c] }

// wordBytes holds WordByte for every byte: one load where the ranges took up
// to seven comparisons, on every byte of every line the sealer puts in a
// block (BenchmarkEachWord).
var wordBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
	}
	return t
}()

// EachWord calls fn for every word of b, in order.
func EachWord(b []byte, fn func(w []byte)) {
	start := -1
	for i, c := range b {
		if WordByte(c) {
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

// ContainsWord reports whether term occurs in b at word boundaries: where
// term begins with a word byte, the byte before the occurrence is not one,
// and where it ends with one, the byte after is not. "error" is in
// "an error: x" and "error" but not in "errors" or "stderr"; a term of
// several words ("connection refused") is a phrase. An empty term is in
// nothing.
func ContainsWord(b, term []byte) bool {
	if len(term) == 0 {
		return false
	}
	checkStart, checkEnd := WordByte(term[0]), WordByte(term[len(term)-1])
	for off := 0; off+len(term) <= len(b); {
		i := bytes.Index(b[off:], term)
		if i < 0 {
			return false
		}
		i += off
		end := i + len(term)
		if (!checkStart || i == 0 || !WordByte(b[i-1])) && (!checkEnd || end == len(b) || !WordByte(b[end])) {
			return true
		}
		off = i + 1
	}
	return false
}
