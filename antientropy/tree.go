package antientropy

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/cbergoon/merkletree"

	"github.com/logmesh/logmesh/record"
)

// Root is a Merkle root.
type Root [32]byte

// emptyRoot stands for a partition or window with no records.
var emptyRoot Root

// leaf is one Merkle leaf: a tag and the bytes it covers.
type leaf struct{ b []byte }

func (l leaf) CalculateHash() ([]byte, error) {
	h := sha256.Sum256(l.b)
	return h[:], nil
}

func (l leaf) Equals(o merkletree.Content) (bool, error) {
	ol, ok := o.(leaf)
	return ok && string(ol.b) == string(l.b), nil
}

func merkleRoot(leaves []merkletree.Content) Root {
	if len(leaves) == 0 {
		return emptyRoot
	}
	t, err := merkletree.NewTree(leaves)
	if err != nil {
		panic("BUG: merkle tree over non-empty leaves: " + err.Error())
	}
	var r Root
	copy(r[:], t.MerkleRoot())
	return r
}

// windowRoot is the Merkle root over a partition's bucket digests in one
// window. Every bucket is a leaf (empty ones too), so trees of two replicas
// have the same shape.
func windowRoot(ds *[record.BucketsPerPartition]record.Digest) Root {
	empty := true
	leaves := make([]merkletree.Content, len(ds))
	for i := range ds {
		empty = empty && ds[i].IsZero()
		b := make([]byte, 0, 1+record.DigestLen)
		b = append(b, byte(i))
		leaves[i] = leaf{ds[i].AppendBinary(b)}
	}
	if empty {
		return emptyRoot
	}
	return merkleRoot(leaves)
}

// partitionRoot is the Merkle root over a partition's non-empty windows.
func partitionRoot(ws []WindowRoot) Root {
	leaves := make([]merkletree.Content, 0, len(ws))
	for _, w := range ws {
		if w.Root == emptyRoot {
			continue
		}
		b := binary.BigEndian.AppendUint32(make([]byte, 0, 36), uint32(w.W))
		leaves = append(leaves, leaf{append(b, w.Root[:]...)})
	}
	return merkleRoot(leaves)
}

// WindowRoot is one window's root.
type WindowRoot struct {
	W    record.Window
	Root Root
}

// trees computes roots over a store, caching window roots by the store's
// change generation so that unchanged windows cost one map lookup.
type trees struct {
	store Store
	mu    sync.Mutex
	cache map[winKey]cachedRoot
}

type winKey struct {
	w record.Window
	p record.Partition
}

type cachedRoot struct {
	gen  uint64
	root Root
}

func newTrees(s Store) *trees { return &trees{store: s, cache: map[winKey]cachedRoot{}} }

// windowRoots returns the roots of partition p's live windows at or after cutoff.
func (t *trees) windowRoots(p record.Partition, cutoff record.Window) []WindowRoot {
	ws := t.store.Windows(p)
	out := make([]WindowRoot, 0, len(ws))
	for _, w := range ws {
		if w < cutoff {
			continue
		}
		if r := t.windowRoot(w, p); r != emptyRoot {
			out = append(out, WindowRoot{w, r})
		}
	}
	return out
}

func (t *trees) windowRoot(w record.Window, p record.Partition) Root {
	ds, gen := t.store.WindowDigests(w, p)
	k := winKey{w, p}
	t.mu.Lock()
	c, ok := t.cache[k]
	t.mu.Unlock()
	if ok && c.gen == gen && gen != 0 {
		return c.root
	}
	r := windowRoot(&ds)
	t.mu.Lock()
	t.cache[k] = cachedRoot{gen, r}
	t.mu.Unlock()
	return r
}

// forget drops cached roots of windows before cutoff.
func (t *trees) forget(cutoff record.Window) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.cache {
		if k.w < cutoff {
			delete(t.cache, k)
		}
	}
}

// partitionRoot returns partition p's root over windows at or after cutoff.
func (t *trees) partitionRoot(p record.Partition, cutoff record.Window) Root {
	return partitionRoot(t.windowRoots(p, cutoff))
}
