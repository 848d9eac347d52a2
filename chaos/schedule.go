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
	OpCutAPI          Op = "cut-api"
	OpLeave           Op = "leave"
	OpWipe            Op = "wipe"
	OpClock           Op = "clock"
)

// Step is one operation at a time after the start of the fault phase.
type Step struct {
	At    time.Duration
	Op    Op
	Nodes []string   // the peers the operation concerns
	Parts [][]string // groups, for partitions
	Arg   float64    // loss probability, or delay in milliseconds
	// Offset is the clock offset an OpClock sets.
	Offset time.Duration
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
	if s.Op == OpClock {
		fmt.Fprintf(&b, " %v", s.Offset)
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
	case "clock-step-back":
		// one peer's clock steps back an hour while writes go on
		s = append(s, Step{At: mid, Op: OpClock, Nodes: shuffled[:1], Offset: -time.Hour})
	case "two-down":
		// two peers down for long enough that their partitions move
		s = append(s, Step{At: start, Op: OpKill, Nodes: shuffled[:1]}, Step{At: start, Op: OpKill, Nodes: shuffled[1:2]},
			Step{At: d - d/5, Op: OpStart, Nodes: shuffled[:1]}, Step{At: d - d/5, Op: OpStart, Nodes: shuffled[1:2]})
	case "wipe":
		// the last peer (which takes no client writes) loses its disk
		s = append(s, Step{At: start, Op: OpWipe, Nodes: last(names)})
	case "overflow-then-leave":
		// the last peer cannot push (its backlog outgrows its tiny
		// --max-hints-bytes), the link comes back, then it leaves
		victim := last(names)[0]
		for _, n := range names {
			if n != victim {
				s = append(s, Step{At: start, Op: OpCutAPI, Nodes: []string{victim, n}})
			}
		}
		s = append(s, Step{At: mid, Op: OpHeal}, Step{At: mid + d/10, Op: OpLeave, Nodes: []string{victim}})
	case "one-way-api-cut":
		// the first peer cannot call the last one's API; gossip goes on
		s = append(s, Step{At: start, Op: OpCutAPI, Nodes: []string{names[0], last(names)[0]}}, Step{At: d - d/10, Op: OpHeal})
	case "kill-and-partition":
		h := len(shuffled) / 2
		s = append(s, Step{At: start, Op: OpKill, Nodes: shuffled[:1]}, Step{At: mid - d/10, Op: OpStart, Nodes: shuffled[:1]},
			Step{At: mid, Op: OpPartitionHalves, Parts: [][]string{shuffled[:h], shuffled[h:]}}, Step{At: d - d/10, Op: OpHeal})
	case "random":
		s = randomSchedule(rng, names, d)
	}
	return s
}

func last(names []string) []string { return names[len(names)-1:] }

// randomSchedule mixes every fault: partitions, isolation, kills, pauses,
// graceful leaves, clock steps, one-way API cuts, loss, and at most one wipe
// of the last peer (which takes no client writes). Faults overlap, but a
// peer suffers one process fault at a time, and at most two peers are down
// at once.
func randomSchedule(rng *rand.Rand, names []string, d time.Duration) Schedule {
	var s Schedule
	slots := 6
	slot := d / time.Duration(slots)
	busy := map[string]time.Duration{} // peer → until when a fault holds it
	down := func(at time.Duration) int {
		n := 0
		for _, until := range busy {
			if until > at {
				n++
			}
		}
		return n
	}
	pick := func(at time.Duration, avoid string) string {
		free := []string{}
		for _, n := range names {
			if busy[n] <= at && n != avoid {
				free = append(free, n)
			}
		}
		if len(free) == 0 {
			return ""
		}
		return free[rng.IntN(len(free))]
	}
	wiped := false
	for k := 0; k < slots; k++ {
		at := slot*time.Duration(k) + time.Duration(rng.Int64N(int64(slot)/4+1))
		end := at + slot/2 + time.Duration(rng.Int64N(int64(slot)+1)) // up to 1.5 slots: faults overlap
		end = min(end, d-d/20)
		switch op := rng.IntN(9); {
		case op == 0:
			sh := slices.Clone(names)
			rng.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
			h := len(sh) / 2
			s = append(s, Step{At: at, Op: OpPartitionHalves, Parts: [][]string{sh[:h], sh[h:]}}, Step{At: end, Op: OpHeal})
		case op == 1:
			if n := pick(at, ""); n != "" {
				s = append(s, Step{At: at, Op: OpIsolate, Nodes: []string{n}}, Step{At: end, Op: OpHeal})
			}
		case op <= 4 && down(at) < 2:
			n := pick(at, "")
			if n == "" {
				continue
			}
			busy[n] = end
			switch op {
			case 2:
				s = append(s, Step{At: at, Op: OpKill, Nodes: []string{n}}, Step{At: end, Op: OpStart, Nodes: []string{n}})
			case 3:
				s = append(s, Step{At: at, Op: OpPause, Nodes: []string{n}}, Step{At: end, Op: OpResume, Nodes: []string{n}})
			case 4:
				s = append(s, Step{At: at, Op: OpLeave, Nodes: []string{n}}, Step{At: end, Op: OpStart, Nodes: []string{n}})
			}
		case op == 5:
			if n := pick(at, ""); n != "" {
				off := time.Duration(rng.IntN(3)-1) * time.Hour // -1h, 0 or +1h
				if off == 0 {
					off = -30 * time.Second
				}
				s = append(s, Step{At: at, Op: OpClock, Nodes: []string{n}, Offset: off}, Step{At: end, Op: OpClock, Nodes: []string{n}})
			}
		case op == 6:
			a, b := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
			if a != b {
				s = append(s, Step{At: at, Op: OpCutAPI, Nodes: []string{a, b}}, Step{At: end, Op: OpHeal})
			}
		case op == 7:
			a, b := names[rng.IntN(len(names))], names[rng.IntN(len(names))]
			if a != b {
				s = append(s, Step{At: at, Op: OpLoss, Nodes: []string{a, b}, Arg: 0.3}, Step{At: end, Op: OpHeal})
			}
		case op == 8 && !wiped && down(at) < 2:
			v := last(names)[0]
			if busy[v] <= at {
				wiped, busy[v] = true, at+slot/2
				s = append(s, Step{At: at, Op: OpWipe, Nodes: []string{v}})
			}
		}
	}
	slices.SortStableFunc(s, func(a, b Step) int { return int(a.At - b.At) })
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
		if t.Running(s.Nodes[0]) {
			return nil // a graceful leave that did not leave, or already back
		}
		return t.Start(s.Nodes[0])
	case OpCutAPI:
		return t.CutAPI(s.Nodes[0], s.Nodes[1])
	case OpLeave:
		return t.Leave(s.Nodes[0])
	case OpWipe:
		return t.Wipe(s.Nodes[0])
	case OpClock:
		return t.SetClock(s.Nodes[0], s.Offset)
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
