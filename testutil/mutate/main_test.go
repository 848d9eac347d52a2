package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryMutationApplies: each mutation's code appears exactly once in
// its file, so the registry cannot rot silently as the code moves on (six
// entries had, found when a review ran them: the tool then reports an
// error for the entry instead of a verdict, and nobody ran them all).
func TestEveryMutationApplies(t *testing.T) {
	root := filepath.Join("..", "..")
	names := map[string]bool{}
	for _, m := range mutations {
		if names[m.name] {
			t.Errorf("mutation %s is named twice", m.name)
		}
		names[m.name] = true
		b, err := os.ReadFile(filepath.Join(root, m.file))
		if err != nil {
			t.Errorf("mutation %s: %v", m.name, err)
			continue
		}
		if n := strings.Count(string(b), m.from); n != 1 {
			t.Errorf("mutation %s: its code appears %d times in %s, want once", m.name, n, m.file)
		}
		if m.from == m.to {
			t.Errorf("mutation %s changes nothing", m.name)
		}
	}
}
