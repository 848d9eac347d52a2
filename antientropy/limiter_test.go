package antientropy

import (
	"context"
	"testing"
	"time"
)

func TestLimiterPacesBytes(t *testing.T) {
	l := NewLimiter(100 << 10) // 100 KiB/s, one second of burst
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 30; i++ { // 300 KiB: the burst, then about two seconds
		if err := l.Wait(ctx, 10<<10); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("300 KiB at 100 KiB/s took %v, want about 2s", el)
	}
	if NewLimiter(0) != nil {
		t.Fatal("a zero rate must mean no limiter")
	}
	if err := (*Limiter)(nil).Wait(ctx, 1<<30); err != nil {
		t.Fatal("a nil limiter must not wait")
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(ctx2, 1<<30); err == nil {
		t.Fatal("a cancelled wait must fail")
	}
}
