package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Op is a nemesis operation, in Jepsen's vocabulary.
type Op string

// Operations.
const (
	OpPartitionHalves Op = "partition-halves"
	OpMajoritiesRing  Op = "majorities-ring"
	OpBridge          Op = "bridge"
	OpIsolate         Op = "isolate"
	OpKill            Op = "kill"
	OpStart           Op = "start"
	OpPause           Op = "pause"
	OpResume          Op = "resume"
	OpLoss            Op = "loss"
	OpSlow            Op = "slow"
	OpHeal            Op = "heal"
)

// Step is one operation at a time after the start of the fault phase.
type Step struct {
	At    time.Duration
	Op    Op
	Nodes []string   // the peers the operation concerns
	Parts [][]string // groups, for partitions
	Arg   float64    // loss probability, or delay in milliseconds
}

func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%v %s", s.At.Round(time.Millisecond), s.Op)
	if len(s.Parts) > 0 {
		for _, p := range s.Parts {
			fmt.Fprintf(&b, " %v", p)
		}
	} else if len(s.Nodes) > 0 {
		fmt.Fprintf(&b, " %v", s.Nodes)
	}
	if s.Arg != 0 {
		fmt.Fprintf(&b, " %g", s.Arg)
	}
	return b.String()
}

// Schedule is a replayable list of steps: the same seed, scenario and peers
// give the same schedule.
type Schedule []Step

func (s Schedule) String() string {
	lines := make([]string, len(s))
	for i, st := range s {
		lines[i] = st.String()
	}
	return strings.Join(lines, "\n")
}

// schedule builds the steps of a scenario's fault phase of length d.
func schedule(kind string, seed uint64, names []string, d time.Duration) Schedule {
	rng := rand.New(rand.NewPCG(seed, 0x5c4ed))
	shuffled := slices.Clone(names)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	jitter := func(base time.Duration) time.Duration { return base + time.Duration(rng.Int64N(int64(base)/4+1)) }
	start, mid := jitter(d/10), jitter(d/2)
	var s Schedule
	switch kind {
	case "baseline":
	case "partition-halves":
		h := len(shuffled) / 2
		s = append(s, Step{At: start, Op: OpPartitionHalves, Parts: [][]string{shuffled[:h], shuffled[h:]}},
			Step{At: mid, Op: OpHeal},
			Step{At: mid + d/10, Op: OpPartitionHalves, Parts: [][]string{shuffled[h:], shuffled[:h]}},
			Step{At: d - d/10, Op: OpHeal})
	case "majorities-ring":
		s = append(s, Step{At: start, Op: OpMajoritiesRing, Nodes: shuffled}, Step{At: d - d/10, Op: OpHeal})
	case "bridge":
		h := len(shuffled) / 2
		bridge := shuffled[h]
		s = append(s, Step{At: start, Op: OpBridge, Nodes: []string{bridge},
			Parts: [][]string{shuffled[:h], shuffled[h+1:]}}, Step{At: d - d/10, Op: OpHeal})
	case "isolate-one-long":
		s = append(s, Step{At: start, Op: OpIsolate, Nodes: shuffled[:1]}, Step{At: d - d/10, Op: OpHeal})
	case "kill9-restart":
		s = append(s, Step{At: start, Op: OpKill, Nodes: shuffled[:1]}, Step{At: mid, Op: OpStart, Nodes: shuffled[:1]})
	case "kill9-during-hint-drain":
		// down long enough to build a backlog, back, then killed again while it drains
		s = append(s, Step{At: start, Op: OpKill, Nodes: shuffled[:1]}, Step{At: mid, Op: OpStart, Nodes: shuffled[:1]},
			Step{At: mid + jitter(300*time.Millisecond), Op: OpKill, Nodes: shuffled[:1]},
			Step{At: d - d/5, Op: OpStart, Nodes: shuffled[:1]})
	case "pause":
		s = append(s, Step{At: start, Op: OpPause, Nodes: shuffled[:1]}, Step{At: mid, Op: OpResume, Nodes: shuffled[:1]})
	case "one-way-loss":
		s = append(s, Step{At: start, Op: OpLoss, Nodes: shuffled[:2], Arg: 0.3}, Step{At: d - d/10, Op: OpHeal})
	case "slow":
		s = append(s, Step{At: start, Op: OpSlow, Nodes: shuffled[:2], Arg: 150}, Step{At: d - d/10, Op: OpHeal})
	}
	return s
}

// apply performs one step on a target.
func apply(t Target, s Step) error {
	switch s.Op {
	case OpPartitionHalves:
		return t.Partition(s.Parts...)
	case OpBridge:
		// each half talks to the bridge, not to the other half
		if err := t.Partition(s.Parts[0], s.Parts[1]); err != nil {
			return err
		}
		return nil
	case OpMajoritiesRing:
		// a ring: every peer talks only to its two neighbours, so each sees
		// a majority of three (of five), and no two majorities are the same
		n := len(s.Nodes)
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if j-i == 1 || (i == 0 && j == n-1) {
					continue
				}
				if err := t.Partition([]string{s.Nodes[i]}, []string{s.Nodes[j]}); err != nil {
					return err
				}
			}
		}
		return nil
	case OpIsolate:
		var rest []string
		for _, n := range t.Names() {
			if n != s.Nodes[0] {
				rest = append(rest, n)
			}
		}
		return t.Partition(s.Nodes, rest)
	case OpKill:
		return t.Kill(s.Nodes[0])
	case OpStart:
		return t.Start(s.Nodes[0])
	case OpPause:
		return t.Pause(s.Nodes[0])
	case OpResume:
		return t.Resume(s.Nodes[0])
	case OpLoss:
		return t.Loss(s.Nodes[0], s.Nodes[1], s.Arg)
	case OpSlow:
		if err := t.Slow(s.Nodes[0], s.Nodes[1], time.Duration(s.Arg)*time.Millisecond); err != nil {
			return err
		}
		return t.Slow(s.Nodes[1], s.Nodes[0], time.Duration(s.Arg)*time.Millisecond)
	case OpHeal:
		return t.Heal()
	}
	return fmt.Errorf("chaos: unknown operation %q", s.Op)
}
