package leaving

import (
	"testing"
	"time"
)

func TestMarkWaitsForADeleteUnderWay(t *testing.T) {
	var g Gate
	inside := make(chan struct{})
	finish := make(chan struct{})
	deleted := make(chan bool, 1)
	go func() {
		_ = g.Delete(func(leaving func(string) bool) error {
			close(inside)
			<-finish
			deleted <- !leaving("p3")
			return nil
		})
	}()
	<-inside
	marked := make(chan struct{})
	go func() {
		g.Mark("p3")
		close(marked)
	}()
	select {
	case <-marked:
		t.Fatal("Mark returned while a delete was deciding")
	case <-time.After(50 * time.Millisecond):
	}
	close(finish)
	<-marked
	if !<-deleted {
		t.Fatal("the delete that began before the mark saw it")
	}
	var skipped bool
	_ = g.Delete(func(leaving func(string) bool) error { skipped = leaving("p3"); return nil })
	if !skipped || !g.Leaving("p3") || g.Leaving("p2") {
		t.Fatalf("after the mark: skipped=%v leaving(p3)=%v leaving(p2)=%v", skipped, g.Leaving("p3"), g.Leaving("p2"))
	}
}

func TestMarksLapse(t *testing.T) {
	now := time.Unix(1000, 0)
	g := Gate{now: func() time.Time { return now }}
	g.Mark("p3")
	now = now.Add(Hold)
	if !g.Leaving("p3") {
		t.Fatal("the mark lapsed early")
	}
	now = now.Add(time.Second)
	if g.Leaving("p3") {
		t.Fatal("the mark outlived Hold")
	}
}

func TestNilGateRunsDeletesUnguarded(t *testing.T) {
	var g *Gate
	g.Mark("p3")
	ran := false
	if err := g.Delete(func(leaving func(string) bool) error { ran = !leaving("p3"); return nil }); err != nil || !ran {
		t.Fatalf("nil gate: ran=%v err=%v", ran, err)
	}
}

func TestClearForgetsAMark(t *testing.T) {
	var g Gate
	g.Mark("p3")
	if !g.Clear("p3") || g.Leaving("p3") || g.Clear("p3") {
		t.Fatal("Clear did not forget the mark once, or reported one that was not there")
	}
}
