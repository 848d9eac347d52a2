// Package record is logmesh's shared data model: the record, its cluster-unique
// ID, the hashes that place it in a time window, hash bucket and partition, and
// its compact binary encoding.
//
// It is pure: no I/O, no clock (a Generator takes its clock as an input), and
// every decoder is fuzzed.
//
// Placement of a record is a function of its ID alone:
//
//	window    = ID milliseconds / WindowMillis           (time window, retention unit)
//	hash      = mix64(ID)                                (stable across processes and versions)
//	bucket    = hash >> (64 - BucketBits)                (digest leaf)
//	partition = hash >> (64 - PartitionBits)             (replica placement unit)
//
// Because bucket and partition both come from the top bits of the same hash,
// every partition is a contiguous run of NumBuckets/NumPartitions buckets.
package record
