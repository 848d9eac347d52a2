// Package repair schedules anti-entropy and keeps the proofs it yields:
// periodic rounds with every co-replica, rounds at once when a peer comes
// back, settling the debts replication records (package replicate),
// hand-over of partitions this peer holds but no longer owns, and which
// partitions this peer holds complete.
//
// # Completeness
//
// A peer holds a partition complete when every record of it acknowledged
// anywhere is either in its store or tracked for it (a cursor's backlog or a
// debt) by the peer that received it. Queries read a partition from one
// complete owner plus what other peers still track for that owner, so
// completeness is what makes an answer full.
//
// Completeness is earned, never assumed, and it is passed on only by a
// peer that has it:
//   - a round that proves this peer's records equal to a peer's that
//     vouched for the partition (held it complete, or held a complete copy
//     as a witness when it lost ownership) makes it complete; two peers that
//     are both being filled prove nothing to each other;
//   - a hand-over whose owner confirms holding every record of a witness's
//     copy makes that owner complete;
//   - genesis: when no known member (left ones aside) claims the partition,
//     complete or as a witness, its owners are complete — a new cluster, or
//     one whose every complete holder is gone for good (reaped by gossip).
//     A peer with seeds decides this only after joining, one that was ever
//     in a cluster only while it sees another member alive, and any peer
//     only while its placement holds every member it knows (left ones
//     aside): after it reassigned a failed member's partitions, the records
//     the members it cannot hear acknowledged are tracked for the owners of
//     their placement, not of its own. In a cluster that existed (this
//     store was in one, or some member claims something), an owner is
//     complete by genesis only once it has proven its roots equal to every
//     other owner's that has not failed or left, since it owns the
//     partition and since the last claim went: the owners left then hold
//     different parts of it.
//
// A peer loses completeness of a partition when it stops owning it (it
// keeps it as a witness while it still holds the data), and when records of
// it are deleted from its store: copies it held without owning the
// partition (hints, handed-over copies), whose delete replication decided
// under an earlier placement and finished after this peer became an owner
// and a round had proven it equal with them. No proof counts while such a
// delete is under way, nor one from a round that began before it ended, for
// a round or for genesis. A wiped store starts with none.
package repair
