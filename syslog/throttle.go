package syslog

import (
	"sync"
	"time"
)

// throttle rate-limits repeated warnings: at most one per key and interval.
// The warnings it holds back are counted and reported with the next one, so
// a flood of bad senders costs one log line per interval, not one per line.
type throttle struct {
	every time.Duration
	now   func() time.Time

	mu struct {
		sync.Mutex
		last       map[string]time.Time // guarded by mu
		suppressed map[string]int       // guarded by mu
	}
}

func newThrottle(every time.Duration, now func() time.Time) *throttle {
	t := &throttle{every: every, now: now}
	t.mu.last = make(map[string]time.Time)
	t.mu.suppressed = make(map[string]int)
	return t
}

// allow reports whether a warning with this key may be logged now, and how
// many were held back since the last one.
func (t *throttle) allow(key string) (ok bool, suppressed int) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, seen := t.mu.last[key]; seen && now.Sub(last) < t.every {
		t.mu.suppressed[key]++
		return false, 0
	}
	t.mu.last[key] = now
	suppressed = t.mu.suppressed[key]
	delete(t.mu.suppressed, key)
	return true, suppressed
}
