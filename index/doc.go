// Package index is logmesh's durable storage: records in Badger, written by a
// group committer, with incremental per-(window, bucket) digests kept in step
// with the data, time-range scans in both directions, lookup by ID, and
// retention by whole time windows.
//
// # Key layout
//
//	'r' window(4) slice(1) partition(2) id(16) → encoded record
//	'j' seq(8)                                 → journal entry: the IDs a commit added or removed
//	'D' window(4)                              → digest checkpoint of one window
//	'm' name                                   → small metadata (checkpoint sequence, cursors, format)
//
// Records sort by window, then slice (a minute of the window), then
// partition, then ID (receive time). New records land only in the newest
// slice's key range, so the tables Badger flushes and compacts while a
// window fills overlap only that minute, never the rest of the window: the
// write cost per record does not grow with what the window already holds
// (format 1, without slices, put every new record in all 256 partition runs
// of the hour, and each compaction rewrote the hour so far). A time-range
// scan merges the partition runs of each slice it touches; everything of one
// partition in one window is one contiguous run per slice, which is what
// anti-entropy and ownership hand-off read (a seek per slice); a whole window
// is one key prefix, which is what retention drops. The partition has two
// bytes, so the key format does not bound the partition count.
//
// A store of format 1 is migrated on open (see migrateFormat); a store of a
// newer format is refused.
//
// # Digests and the journal
//
// Every commit writes, in the same Badger transaction as the records, one
// journal entry listing the IDs it added (or removed). The digests live in
// memory and are checkpointed periodically ('D' keys plus the journal sequence
// they cover, in one transaction); on open they are rebuilt from the last
// checkpoint plus the journal entries after it. A crash therefore can never
// leave digests and data out of step, and no restart rescans the data. The
// journal is also the append-ordered log that replication cursors follow;
// entries are pruned once the checkpoint and every cursor have passed them.
//
// One Badger entry per record plus one per commit keeps the write path at the
// cost of the records themselves (a second per-record index key halves Badger's
// write rate; measured while designing this package).
package index
