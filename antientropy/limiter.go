package antientropy

import (
	"context"
	"sync"
	"time"
)

// Limiter bounds the bytes of records a peer sends for repair per second
// (--repair-rate), with a burst of one second's worth. A nil Limiter does
// not limit.
type Limiter struct {
	rate float64 // bytes per second

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of bytesPerSec; 0 or less means no limit (nil).
func NewLimiter(bytesPerSec int64) *Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return &Limiter{rate: float64(bytesPerSec), tokens: float64(bytesPerSec), last: time.Now()}
}

// Wait blocks until n bytes may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	wait := time.Duration(0)
	if l.tokens < 0 {
		wait = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
