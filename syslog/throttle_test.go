package syslog

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(10*time.Second, func() time.Time { return now })
	f := func(key string, wantOK bool, wantSuppressed int) {
		t.Helper()
		if ok, n := th.allow(key); ok != wantOK || n != wantSuppressed {
			t.Errorf("allow(%q) at %v = %v, %d; want %v, %d", key, now.Format(time.TimeOnly), ok, n, wantOK, wantSuppressed)
		}
	}
	f("a", true, 0)
	f("a", false, 0)
	f("b", true, 0) // keys are independent
	now = now.Add(9 * time.Second)
	f("a", false, 0)
	now = now.Add(time.Second)
	f("a", true, 2) // the two held back are reported
	f("a", false, 0)
	now = now.Add(time.Minute)
	f("a", true, 1)
	f("b", true, 0)
}
