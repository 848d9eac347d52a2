package antientropy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts reconciliation work, on both the initiating and the
// responding side. It is safe for concurrent use.
type Stats struct {
	Rounds          atomic.Uint64
	RoundErrors     atomic.Uint64
	RoundNanos      atomic.Uint64
	DifferingLeaves atomic.Uint64 // buckets found different
	RecordsSent     atomic.Uint64
	RecordsReceived atomic.Uint64
	BytesSent       atomic.Uint64 // record bytes
	BytesReceived   atomic.Uint64

	mu       sync.Mutex
	progress map[string]*Progress
}

// Progress describes a repair under way with one peer.
type Progress struct {
	Peer    string
	Started time.Time
	// Expected is a lower bound of the records to move, known once the
	// differing buckets are; Done counts those moved so far.
	Expected, Done int
}

// ETA estimates the time left from the rate so far (0 when unknown).
func (p Progress) ETA(now time.Time) time.Duration {
	el := now.Sub(p.Started)
	if p.Done == 0 || p.Expected <= p.Done || el <= 0 {
		return 0
	}
	rate := float64(p.Done) / el.Seconds()
	return time.Duration(float64(p.Expected-p.Done) / rate * float64(time.Second))
}

// InProgress returns the repairs under way.
func (s *Stats) InProgress() []Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Progress, 0, len(s.progress))
	for _, p := range s.progress {
		out = append(out, *p)
	}
	return out
}

func (s *Stats) begin(peer string) *Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progress == nil {
		s.progress = map[string]*Progress{}
	}
	p := &Progress{Peer: peer, Started: time.Now()}
	s.progress[peer] = p
	return p
}

func (s *Stats) update(p *Progress, f func(*Progress)) {
	s.mu.Lock()
	f(p)
	s.mu.Unlock()
}

func (s *Stats) end(peer string) {
	s.mu.Lock()
	delete(s.progress, peer)
	s.mu.Unlock()
}
