package peer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Idempotency keys: a client that sends a batch with an Idempotency-Key
// header and retries it with the same key (after a timeout, a 503, or a
// 504 whose copies it does not trust) gets the same records, not a second
// copy. The key is stored with the IDs the batch got, in the same
// transaction as its first records; a retry that finds it writes the batch
// again under those IDs, skipping what is stored already. Keys are kept
// for Config.IdempotencyTTL, on the peer that took the batch: a retry must
// go to the same peer.

// HeaderIdempotencyKey names the batch for retries.
const HeaderIdempotencyKey = "Idempotency-Key"

const (
	metaIdempotency = "idem/"
	maxKeyBytes     = 128
)

// idempotency serialises attempts under one key on this peer, so that a
// retry arriving while the first attempt is still storing waits for it.
type idempotency struct {
	mu       sync.Mutex
	inflight map[string]chan struct{}
}

// checkKey refuses keys that are empty, too long or not printable ASCII.
func checkKey(key string) error {
	if len(key) == 0 || len(key) > maxKeyBytes {
		return fmt.Errorf("%s must be 1 to %d characters", HeaderIdempotencyKey, maxKeyBytes)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fmt.Errorf("%s must be printable ASCII without spaces", HeaderIdempotencyKey)
		}
	}
	return nil
}

// begin waits until no other attempt with key is in flight here and
// returns the function that ends this one.
func (k *idempotency) begin(ctx context.Context, key string) (func(), error) {
	for {
		k.mu.Lock()
		if k.inflight == nil {
			k.inflight = map[string]chan struct{}{}
		}
		ch, busy := k.inflight[key]
		if !busy {
			done := make(chan struct{})
			k.inflight[key] = done
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.inflight, key)
				k.mu.Unlock()
				close(done)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// idempotentIDs returns the IDs an earlier attempt under key got, and the
// fingerprint of its batch (nil if it was stored by a version that kept
// none).
func (p *Peer) idempotentIDs(key string) ([]record.ID, []byte, bool, error) {
	v, err := p.db.GetMeta(metaIdempotency + key)
	if err != nil || v == nil {
		return nil, nil, false, err
	}
	ids, fp, ok := decodeIDs(v)
	if !ok {
		return nil, nil, false, fmt.Errorf("idempotency key %q: stored value is corrupt", key)
	}
	return ids, fp, true, nil
}

// An idempotency key's value: the count of IDs (uvarint), the IDs, then
// fingerprintMark and the batch's fingerprint (a SHA-256 of its media type
// and body), by which a different batch under a used key is refused. Values
// of versions before the fingerprint end after the IDs; a version before it
// reads a value with one as corrupt (503) until the key expires.
const fingerprintMark = 'F'

// fingerprintLen is the length of a batch fingerprint.
const fingerprintLen = sha256.Size

// batchHasher returns the hash a batch's fingerprint is taken with, the
// media type already in it; its Sum is the fingerprint.
func batchHasher(mediaType string) hash.Hash {
	h := sha256.New()
	h.Write([]byte(mediaType))
	h.Write([]byte{0})
	return h
}

func encodeIDs(ids []record.ID, fingerprint []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 4+len(ids)*record.IDLen+1+len(fingerprint)), uint64(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	if len(fingerprint) == fingerprintLen {
		b = append(b, fingerprintMark)
		b = append(b, fingerprint...)
	}
	return b
}

func decodeIDs(b []byte) ([]record.ID, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/record.IDLen {
		return nil, nil, false
	}
	rest := b[k+int(n)*record.IDLen:]
	var fp []byte
	switch {
	case len(rest) == 0:
	case len(rest) == 1+fingerprintLen && rest[0] == fingerprintMark:
		fp = rest[1:]
	default:
		return nil, nil, false
	}
	ids := make([]record.ID, n)
	for i := range ids {
		copy(ids[i][:], b[k+i*record.IDLen:])
	}
	return ids, fp, true
}

// defaultIdempotencyTTL is how long keys are kept unless configured.
const defaultIdempotencyTTL = 24 * time.Hour
