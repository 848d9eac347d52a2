package index

import (
	"reflect"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger builds every table (memtable flushes and compaction output) in an
// allocator taken from a pool of eight, and returns it there with its buffers
// kept up to 400 MiB. The buffers grow by doubling, so flushing one 16 MiB
// memtable leaves an allocator of 62 MiB or more behind, and the pool only
// lets one go after two seconds in which no table was built — never, under
// steady ingestion. Measured on the bench (2 M records), the pool held
// 240 MiB of a 300 MiB live heap. The pool is not configurable, so the DB
// empties it itself: builders in progress keep their allocators, idle ones are
// released to the garbage collector within builderPoolDrainEvery.
const builderPoolDrainEvery = 500 * time.Millisecond

// builderPool returns Badger's table-builder allocator pool, or nil if this
// Badger version has none where it is looked for (then nothing is drained and
// memory use is as Badger makes it).
func builderPool(bdb *badger.DB) *z.AllocatorPool {
	f := reflect.ValueOf(bdb).Elem().FieldByName("allocPool")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*z.AllocatorPool]() {
		return nil
	}
	// Open set the field before it returned and nothing writes it again, so
	// reading it here does not race.
	return *(**z.AllocatorPool)(unsafe.Pointer(f.UnsafeAddr()))
}

// drainBuilderPool releases the allocators idle in p. Get hands out a pooled
// allocator while there is one and a small new one after that; both are
// released, so at most the pool's capacity of calls is needed.
func drainBuilderPool(p *z.AllocatorPool) {
	for range builderPoolCap {
		p.Get(0, "logmesh-drain").Release()
	}
}

// builderPoolCap is the capacity Badger gives the pool (z.NewAllocatorPool(8) in badger/v4 db.go).
const builderPoolCap = 8
