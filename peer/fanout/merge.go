package fanout

import (
	"container/heap"
	"io"

	"github.com/logmesh/logmesh/record"
)

// Source is one ordered stream of records taking part in a merge.
type Source interface {
	// Next returns the next record; io.EOF at a clean end.
	Next() (record.ID, []byte, error)
	Close()
}

// SourceError marks the failure of one source during a merge.
type SourceError struct {
	Name string
	Err  error
}

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// Named is a source with the name of the peer it reads.
type Named struct {
	Name string
	Source
}

type head struct {
	src  Named
	id   record.ID
	data []byte
}

type heads struct {
	h       []*head
	reverse bool
}

func (h *heads) Len() int { return len(h.h) }
func (h *heads) Less(i, j int) bool {
	c := record.Compare(h.h[i].id, h.h[j].id)
	if h.reverse {
		return c > 0
	}
	return c < 0
}
func (h *heads) Swap(i, j int) { h.h[i], h.h[j] = h.h[j], h.h[i] }
func (h *heads) Push(x any)    { h.h = append(h.h, x.(*head)) }
func (h *heads) Pop() any {
	x := h.h[len(h.h)-1]
	h.h = h.h[:len(h.h)-1]
	return x
}

// Merge merges ordered sources (newest first when reverse), drops repeated
// IDs and stops after limit records (0: no limit). A source that fails
// ends the merge with a *SourceError naming it.
func Merge(srcs []Named, reverse bool, limit int, fn func(record.ID, []byte) error) error {
	hs := &heads{reverse: reverse}
	pull := func(h *head) (bool, error) {
		id, data, err := h.src.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, &SourceError{Name: h.src.Name, Err: err}
		}
		h.id, h.data = id, data
		return true, nil
	}
	for _, s := range srcs {
		h := &head{src: s}
		ok, err := pull(h)
		if err != nil {
			return err
		}
		if ok {
			hs.h = append(hs.h, h)
		}
	}
	heap.Init(hs)
	n := 0
	var last record.ID
	first := true
	for hs.Len() > 0 {
		h := hs.h[0]
		if first || h.id != last {
			if err := fn(h.id, h.data); err != nil {
				return err
			}
			n++
			if limit > 0 && n >= limit {
				return nil
			}
		}
		last, first = h.id, false
		ok, err := pull(h)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(hs, 0)
		} else {
			heap.Pop(hs)
		}
	}
	return nil
}
