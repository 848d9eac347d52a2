// Command testsummary reads `go test -v` output on stdin, passes it through,
// and ends with a table of every test and subtest that ran: passed, failed
// or skipped (with the reason), so that a skip in CI cannot pass silently.
// A failed test's last lines of output are repeated under the table, so the
// reason is in the tail of the log, where a truncated CI excerpt still shows
// it.
//
//	go test -v ./chaos 2>&1 | go run ./testutil/testsummary
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

var (
	result = regexp.MustCompile(`^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)
	// running names the test whose output follows (go test -v prints
	// "=== NAME" whenever output switches between tests)
	running = regexp.MustCompile(`^=== (RUN|CONT|NAME|PAUSE)\s+(\S+)`)
)

// keep is how many lines of a failed test's output the summary repeats.
const keep = 12

type row struct{ name, res, dur, why string }

func main() {
	summarize(os.Stdin, os.Stdout)
}

func summarize(in io.Reader, out io.Writer) {
	var rows []row
	tails := map[string][]string{}
	current := ""
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(out, line)
		if m := running.FindStringSubmatch(line); m != nil {
			current = m[2]
			continue
		}
		if m := result.FindStringSubmatch(line); m != nil {
			r := row{name: m[3], res: m[2], dur: m[4]}
			if t := tails[r.name]; r.res == "SKIP" && len(t) > 0 {
				// go test -v prints t.Skip's reason before the result
				r.why = strings.TrimSpace(t[len(t)-1])
				if i := strings.Index(r.why, ": "); i >= 0 && strings.Contains(r.why[:i], ".go:") {
					r.why = r.why[i+2:]
				}
			}
			rows = append(rows, r)
			continue
		}
		if current != "" && strings.HasPrefix(line, " ") {
			t := append(tails[current], line)
			if len(t) > keep {
				t = t[len(t)-keep:]
			}
			tails[current] = t
		}
	}
	counts := map[string]int{}
	fmt.Fprintln(out, "\n==== summary")
	for _, r := range rows {
		counts[r.res]++
		fmt.Fprintf(out, "%-4s  %-70s %8s  %s\n", r.res, r.name, r.dur, r.why)
	}
	for _, r := range rows {
		if r.res == "FAIL" && len(tails[r.name]) > 0 {
			fmt.Fprintf(out, "\n==== %s failed; its last lines:\n%s\n", r.name, strings.Join(tails[r.name], "\n"))
		}
	}
	fmt.Fprintf(out, "==== %d passed, %d failed, %d skipped\n", counts["PASS"], counts["FAIL"], counts["SKIP"])
}
