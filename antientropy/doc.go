// Package antientropy makes replicas converge: two peers compare Merkle trees
// built over the incremental digests their stores keep per (time window, hash
// bucket), descend only into what differs, and repair exactly the records one
// side lacks, in both directions, in one exchange.
//
// The trees (github.com/cbergoon/merkletree) have two levels per partition:
//
//	partition root = Merkle root over (window, window root) for the live windows
//	window root    = Merkle root over the partition's 16 bucket digests in that window
//
// A round between an initiator and a responder:
//
//  1. roots: the initiator sends one root per shared partition; the responder
//     answers with its window roots for the partitions that differ.
//  2. buckets: the initiator sends its 16 bucket digests for each differing
//     window; the responder compares them with its own. Because a digest is a
//     count and sums of hashes, the difference of two digests that differ by
//     one record names that record's hashes: the responder sends a record it
//     alone has, or asks the initiator for the one it alone has, without
//     listing any IDs. Buckets that differ by more come back as ID lists; a
//     bucket empty on one side is streamed whole.
//  3. exchange: the initiator pushes what the responder lacks and asks for
//     what it lacks itself; one more exchange settles the rare bucket whose
//     one-record difference did not resolve.
//
// Records never change, so set reconciliation is exact: records sent equal
// records missing. Windows before the retention cutoff (the later of the two
// peers' cutoffs) are never compared, so retention cannot be undone by repair.
// Window roots are cached by the change generation the store reports, so a
// round between replicas in step costs one root per partition on the wire
// and almost no CPU, whatever the amount of data stored.
package antientropy
