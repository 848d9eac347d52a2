package chaos

import "time"

// Target is a cluster under test and the faults it can suffer. Peer names
// are the member names.
type Target interface {
	// Names lists every peer, running or not.
	Names() []string
	// API returns the address of a peer's HTTP API, reachable from the test.
	API(name string) string
	// Syslog returns the address of a peer's syslog listener (TCP and UDP).
	Syslog(name string) string
	// Replicas is the replication factor; AEInterval the anti-entropy interval.
	Replicas() int
	AEInterval() time.Duration

	// Partition cuts every link between different groups (both ways);
	// peers not named keep their links.
	Partition(groups ...[]string) error
	// Loss drops packets from → to with probability p.
	Loss(from, to string, p float64) error
	// Slow delays traffic from → to.
	Slow(from, to string, d time.Duration) error
	// CutAPI drops the data plane from → to (calls to to's API) while
	// gossip between them goes on.
	CutAPI(from, to string) error
	// Heal removes every network fault.
	Heal() error
	// Kill stops a peer at once (SIGKILL where there is a process).
	Kill(name string) error
	// Start (re)starts a stopped peer with its data.
	Start(name string) error
	// Leave stops a peer gracefully (SIGTERM: it leaves the cluster first,
	// or stops without leaving when it cannot deliver what only it holds).
	Leave(name string) error
	// Wipe stops a peer at once, deletes its data and starts it again under
	// the same name.
	Wipe(name string) error
	// SetClock shifts a running peer's clock by offset from true time.
	SetClock(name string, offset time.Duration) error
	// Pause freezes a peer (SIGSTOP); Resume thaws it.
	Pause(name string) error
	Resume(name string) error
	// Running reports whether the peer is started (paused counts).
	Running(name string) bool
	// OwnProcesses reports whether each peer is a process of its own, so
	// that its goroutines, FDs and RSS are its own.
	OwnProcesses() bool
	// Close stops everything.
	Close()
}
