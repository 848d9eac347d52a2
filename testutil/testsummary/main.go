// Command testsummary reads `go test -v` output on stdin, passes it through,
// and ends with a table of every test and subtest that ran: passed, failed
// or skipped (with the reason), so that a skip in CI cannot pass silently.
//
//	go test -v ./chaos 2>&1 | go run ./testutil/testsummary
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
)

var result = regexp.MustCompile(`^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)

func main() {
	type row struct{ name, res, dur, why string }
	var rows []row
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	pendingSkip := -1
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		if m := result.FindStringSubmatch(line); m != nil {
			rows = append(rows, row{name: m[3], res: m[2], dur: m[4]})
			pendingSkip = -1
			if m[2] == "SKIP" {
				pendingSkip = len(rows) - 1
			}
			continue
		}
		if pendingSkip >= 0 && strings.TrimSpace(line) != "" {
			why := strings.TrimSpace(line)
			if i := strings.Index(why, ": "); i >= 0 && strings.Contains(why[:i], ".go:") {
				why = why[i+2:]
			}
			rows[pendingSkip].why = why
			pendingSkip = -1
		}
	}
	counts := map[string]int{}
	fmt.Println("\n==== summary")
	for _, r := range rows {
		counts[r.res]++
		fmt.Printf("%-4s  %-70s %8s  %s\n", r.res, r.name, r.dur, r.why)
	}
	fmt.Printf("==== %d passed, %d failed, %d skipped\n", counts["PASS"], counts["FAIL"], counts["SKIP"])
}
