package main

import (
	"strings"
	"testing"
)

// TestAFailureReasonReachesTheTail: the reason a subtest failed is repeated
// after the table, and a passing test's output is not.
func TestAFailureReasonReachesTheTail(t *testing.T) {
	in := `=== RUN   TestX
=== RUN   TestX/a
    x_test.go:10: the reason a failed
--- FAIL: TestX/a (1.00s)
=== RUN   TestX/b
    x_test.go:20: chatter of b
--- PASS: TestX/b (2.00s)
--- FAIL: TestX (3.00s)
=== RUN   TestY
    y_test.go:5: needs root
--- SKIP: TestY (0.00s)
=== RUN   TestZ
=== RUN   TestZ/in
    z_test.go:3: needs docker
--- PASS: TestZ (0.00s)
    --- SKIP: TestZ/in (0.00s)
PASS
`
	var out strings.Builder
	summarize(strings.NewReader(in), &out)
	s := out.String()
	tail := s[strings.Index(s, "==== summary"):]
	for _, want := range []string{"FAIL  TestX/a", "PASS  TestX/b", "SKIP  TestY", "needs root", "needs docker", "==== TestX/a failed; its last lines:\n    x_test.go:10: the reason a failed", "==== 2 passed, 2 failed, 2 skipped"} {
		if !strings.Contains(tail, want) {
			t.Errorf("summary lacks %q:\n%s", want, tail)
		}
	}
	if strings.Contains(tail, "chatter of b") {
		t.Errorf("summary repeats a passing test's output:\n%s", tail)
	}
}
