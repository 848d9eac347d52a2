package index

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrNoSpace is returned (wrapped) by writes refused because the disk that
// holds the store is (nearly) full. A write refused with it stored nothing.
var ErrNoSpace = errors.New("index: not enough free disk space")

// Why a guard at all: Badger writes its write-ahead log, its value log and
// every new table through memory maps of sparse files. On a full disk (or a
// full tmpfs) the page fault that would allocate a block fails with SIGBUS,
// which the Go runtime turns into a fatal "unexpected fault address": the
// process dies instead of getting ENOSPC. So the store must stop writing
// while some space is still free, leaving Badger room for the flushes and
// compactions already under way.

// spaceGuard decides whether the store accepts writes, from the free space
// of the filesystem that holds it.
type spaceGuard struct {
	dir     string
	minFree int64 // refuse writes below this many free bytes; <0: never
	statfs  func(dir string) (free int64, err error)

	free     atomic.Int64  // last measured free bytes
	refused  atomic.Uint64 // writes refused for lack of space
	writable atomic.Bool

	mu struct {
		sync.Mutex
		// ready is closed while the store is writable and replaced by an
		// open channel when it stops being so.
		ready chan struct{}
	}
}

func newSpaceGuard(dir string, minFree int64, statfs func(string) (int64, error)) *spaceGuard {
	g := &spaceGuard{dir: dir, minFree: minFree, statfs: statfs}
	g.mu.ready = make(chan struct{})
	close(g.mu.ready)
	g.writable.Store(true)
	g.free.Store(-1)
	return g
}

// statfsFree returns the bytes an unprivileged process may still allocate
// on the filesystem holding dir.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// resumeAt is the free space at which a store that stopped writing starts
// again: an eighth above the floor, so it does not flap around it.
func (g *spaceGuard) resumeAt() int64 { return g.minFree + g.minFree/8 }

// check measures free space and updates the writable state; it returns nil
// when writes may proceed, else an error wrapping ErrNoSpace.
func (g *spaceGuard) check() error {
	if g.minFree < 0 {
		return nil
	}
	free, err := g.statfs(g.dir)
	if err != nil {
		return nil // cannot tell: let Badger try (and say what failed)
	}
	g.free.Store(free)
	floor := g.minFree
	if !g.writable.Load() {
		floor = g.resumeAt()
	}
	if free < floor {
		g.setWritable(false)
		return fmt.Errorf("%w: %s has %d bytes free, the floor is %d; writes resume at %d",
			ErrNoSpace, g.dir, free, g.minFree, g.resumeAt())
	}
	g.setWritable(true)
	return nil
}

// backgroundOK reports whether the store's own small writes (checkpoints,
// journal pruning, retention) may run: they may use the lower half of the
// reserve, which is otherwise left to Badger's flushes and compactions.
func (g *spaceGuard) backgroundOK() bool {
	if g.minFree < 0 {
		return true
	}
	free, err := g.statfs(g.dir)
	return err != nil || free >= g.minFree/2
}

// noteErr marks the store unwritable when err says the disk is full, and
// returns err. It does not wrap err in ErrNoSpace: that promises nothing was
// stored, which a failed commit cannot.
func (g *spaceGuard) noteErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		g.setWritable(false)
	}
	return err
}

func (g *spaceGuard) setWritable(ok bool) {
	if g.writable.Load() == ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.writable.Load() == ok {
		return
	}
	g.writable.Store(ok)
	if ok {
		close(g.mu.ready)
	} else {
		g.mu.ready = make(chan struct{})
	}
}

func (g *spaceGuard) readyCh() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.ready
}

// recheckSpace re-measures free space (every DiskCheckInterval), so that
// the store says it is writable again (and waiting writers resume) as soon as
// space returns, without a write having to try first.
func (db *DB) recheckSpace() bool {
	was := db.space.writable.Load()
	_ = db.space.check()
	if now := db.space.writable.Load(); now != was {
		db.logWritable(now)
	}
	return true
}

func (db *DB) logWritable(ok bool) {
	free, min := db.space.free.Load(), db.space.minFree
	if ok {
		db.cfg.Logger.Info("store writable again: disk space returned", "free_bytes", free, "min_free_bytes", min)
	} else {
		db.cfg.Logger.Error("store refuses writes: disk nearly full", "free_bytes", free, "min_free_bytes", min,
			"hint", "free space on the data directory's filesystem; writes resume by themselves")
	}
}

// Writable reports whether the store accepts writes (false while its disk
// is nearly full).
func (db *DB) Writable() bool { return db.space.writable.Load() }

// WaitWritable returns once the store accepts writes again, or with ctx's
// error, or ErrClosed when the store closes first.
func (db *DB) WaitWritable(ctx context.Context) error {
	select {
	case <-db.space.readyCh():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-db.ctx.Done():
		return ErrClosed
	}
}

// admit checks free space before a group commit; on refusal it fails every
// request of the group (nothing of them was stored) and returns false.
func (db *DB) admit(batch []*writeReq) bool {
	was := db.space.writable.Load()
	err := db.space.check()
	if now := db.space.writable.Load(); now != was {
		db.logWritable(now)
	}
	if err == nil {
		return true
	}
	db.space.refused.Add(uint64(len(batch)))
	for _, req := range batch {
		req.err = err
		close(req.done)
	}
	return false
}
