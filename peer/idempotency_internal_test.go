package peer

import (
	"bytes"
	"slices"
	"testing"

	"github.com/logmesh/logmesh/record"
)

// An idempotency key's value keeps the IDs and the batch's fingerprint; a
// value of the version before the fingerprint (the IDs alone) still reads,
// with no fingerprint; anything else is corrupt.
func TestIdempotencyValueKeepsIDsAndFingerprint(t *testing.T) {
	ids := make([]record.ID, 3)
	for i := range ids {
		ids[i][15] = byte(i + 1)
	}
	fp := batchHasher("application/x-ndjson").Sum(nil)
	got, gotFP, ok := decodeIDs(encodeIDs(ids, fp))
	if !ok || !slices.Equal(got, ids) || !bytes.Equal(gotFP, fp) {
		t.Fatalf("round trip: %v %x %v", got, gotFP, ok)
	}
	old := encodeIDs(ids, nil)
	if got, gotFP, ok := decodeIDs(old); !ok || !slices.Equal(got, ids) || gotFP != nil {
		t.Fatalf("a value without a fingerprint: %v %x %v", got, gotFP, ok)
	}
	other := batchHasher("text/plain").Sum(nil)
	if bytes.Equal(other, fp) {
		t.Fatal("the media type is not in the fingerprint")
	}
	for _, bad := range [][]byte{nil, {}, old[:len(old)-1], append(slices.Clone(old), 'F'), append(slices.Clone(old), make([]byte, 33)...), {0xff}} {
		if _, _, ok := decodeIDs(bad); ok {
			t.Errorf("%x decoded", bad)
		}
	}
}

// FuzzDecodeIdempotencyValue: no stored value crashes the decoder, and what
// it accepts encodes back to a value that decodes to the same IDs and
// fingerprint (the count's varint may have been written longer than need be).
func FuzzDecodeIdempotencyValue(f *testing.F) {
	ids := []record.ID{{1}, {2}}
	f.Add(encodeIDs(ids, nil))
	f.Add(encodeIDs(ids, batchHasher("text/plain").Sum(nil)))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, fp, ok := decodeIDs(b)
		if !ok {
			return
		}
		ids2, fp2, ok := decodeIDs(encodeIDs(ids, fp))
		if !ok || !slices.Equal(ids2, ids) || !bytes.Equal(fp2, fp) {
			t.Fatalf("%x decoded to %d IDs and fingerprint %x, and again to %d IDs and %x (%v)", b, len(ids), fp, len(ids2), fp2, ok)
		}
	})
}
